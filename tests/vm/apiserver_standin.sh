#!/bin/sh
# An API server stand-in for the VM probe test (tests/vm/test_probe_vm.py), run as root in a bare
# Debian 12 guest. It leaves the guest as the k3s installer leaves a node, but with a TLS server
# in place of the API server:
# - k3s.service, a real systemd unit (install.sh's create_systemd_service_file, then systemctl
#   enable and start), whose main process is `openssl s_server` on 127.0.0.1:6443. It demands a
#   client certificate signed by the client CA (-Verify 1, and -verify_return_error, without which
#   s_server only logs a bad certificate and carries on), as kube-apiserver does with
#   --client-ca-file, and answers GET /readyz with 200 and "ok" (-WWW serves ./readyz).
# - /etc/rancher/k3s/k3s.yaml, the admin kubeconfig in the form the k3s server writes it: the
#   server CA, the admin's client certificate and key, inline as *-data (base64).
# - k3s on PATH: the fake of tests/guest/fakes.sh (k3s kubectl, k3s ctr, k3s --version), with the
#   state a finished install leaves (a registered node).
# Certificates are EC P-256 like k3s's own, with separate server and client CAs as k3s has.
#
#   apiserver_standin.sh setup FAKES_SH   install all of the above and wait for the stand-in
#   apiserver_standin.sh stop             freeze the API server (SIGSTOP): it accepts connections
#                                         but never answers, the 1 GiB symptom (k3s issue 3976);
#                                         the fake kubectl sees the API down and the pod failed.
#                                         Prints the guest's time (unix ms) just before the stop.
#   apiserver_standin.sh stop-after N FILE SECONDS
#                                         stop once FILE holds N probe lines (the kit's phase file
#                                         as it fills); gives up after SECONDS (exit 1)
#   apiserver_standin.sh restart          a fresh API server, and the fake kubectl's API back
set -eu

D=/var/lib/k8sf-standin
F=/var/lib/k8sf-fake  # FAKE_DIR of fakes.sh
PORT=6443

ec_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2> /dev/null; }

ca() { # NAME CN
  ec_key "$1"
  openssl req -x509 -new -key "$1.key" -subj "/CN=$2" -days 7 -out "$1.crt" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,digitalSignature
}

leaf() { # NAME CA SUBJECT EXTENSION...
  _n=$1 _c=$2 _s=$3
  shift 3
  ec_key "$_n"
  openssl req -new -key "$_n.key" -subj "$_s" -out "$_n.csr"
  printf '%s\n' "$@" > "$_n.ext"
  openssl x509 -req -in "$_n.csr" -CA "$_c.crt" -CAkey "$_c.key" -CAcreateserial -days 7 \
    -extfile "$_n.ext" -out "$_n.crt" 2> /dev/null
}

wait_port() { # SECONDS: until a TLS handshake with the right client certificate gets /readyz
  _end=$(($(date +%s) + $1))
  until curl -sf --max-time 5 --cacert "$D/pki/server-ca.crt" --cert "$D/pki/admin.crt" \
    --key "$D/pki/admin.key" "https://127.0.0.1:$PORT/readyz" > /dev/null; do
    [ "$(date +%s)" -lt "$_end" ] || { echo "standin: no answer on $PORT after $1 s" >&2; return 1; }
    sleep 1
  done
}

setup() { # FAKES_SH
  umask 077
  mkdir -p "$D/pki" "$D/www" "$F/bin"
  cd "$D/pki"
  ca server-ca k3s-server-ca
  ca client-ca k3s-client-ca
  # Another cluster's client CA, and an admin certificate from it: the stand-in must refuse it.
  ca other-ca other-client-ca
  leaf server server-ca /CN=k3s "subjectAltName=DNS:localhost,IP:127.0.0.1" "extendedKeyUsage=serverAuth"
  leaf admin client-ca "/O=system:masters/CN=system:admin" "extendedKeyUsage=clientAuth"
  leaf other other-ca "/O=system:masters/CN=system:admin" "extendedKeyUsage=clientAuth"
  printf 'ok' > "$D/www/readyz"

  mkdir -p /etc/rancher/k3s
  cat > /etc/rancher/k3s/k3s.yaml << EOF
apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: $(base64 -w0 "$D/pki/server-ca.crt")
    server: https://127.0.0.1:$PORT
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
kind: Config
preferences: {}
users:
- name: default
  user:
    client-certificate-data: $(base64 -w0 "$D/pki/admin.crt")
    client-key-data: $(base64 -w0 "$D/pki/admin.key")
EOF

  # The fake k3s, and what the installer leaves for it (fakes.sh k3s-install.sh: the version
  # file, the command installed, the node registered).
  umask 022
  mkdir -p /usr/local/lib/k8sf-fake
  cp "$1" /usr/local/lib/k8sf-fake/fakes.sh
  printf '#!/bin/sh\nFAKE_NAME=k3s FAKE_DIR=%s exec sh /usr/local/lib/k8sf-fake/fakes.sh "$@"\n' "$F" > /usr/local/bin/k3s
  chmod 755 /usr/local/bin/k3s
  ln -sf /usr/local/lib/k8sf-fake/fakes.sh "$F/bin/k3s"
  echo v1.31.4+k3s1 > "$F/k3s-version"
  touch "$F/node"

  cat > /etc/systemd/system/k3s.service << EOF
[Unit]
Description=k8s-footprint VM test: an API server stand-in (openssl s_server) in place of k3s
After=network-online.target

[Service]
Type=simple
WorkingDirectory=$D/www
ExecStart=/usr/bin/openssl s_server -accept 127.0.0.1:$PORT -cert $D/pki/server.crt -key $D/pki/server.key -CAfile $D/pki/client-ca.crt -Verify 1 -verify_return_error -WWW -quiet
StandardInput=null
StandardOutput=append:$D/s_server.log
StandardError=append:$D/s_server.log

[Install]
WantedBy=multi-user.target
EOF
  systemctl daemon-reload
  systemctl enable --now k3s.service
  wait_port 60
}

stop() {
  _pid=$(systemctl show -p MainPID --value k3s.service)
  [ "${_pid:-0}" -gt 0 ] || { echo "standin: k3s.service has no main process" >&2; return 1; }
  # The fake kubectl talks to the same API server: down for it too, and the pod with it.
  touch "$F/api-down" "$F/pod-failed"
  date +%s%3N
  kill -STOP "$_pid"
}

# Run in the guest, the stop follows the Nth probe by a fraction of a second; from the host, an
# SSH round trip to a TCG guest under load can take several seconds, and probes go on meanwhile.
stop_after() { # N FILE SECONDS
  _end=$(($(date +%s) + $3))
  until [ "$(grep -c '^probe' "$2" 2> /dev/null)" -ge "$1" ] 2> /dev/null; do
    [ "$(date +%s)" -lt "$_end" ] || { echo "standin: $2 did not reach $1 probes in $3 s" >&2; return 1; }
    sleep 0.2
  done
  stop
}

restart() {
  rm -f "$F/api-down" "$F/pod-failed"
  # systemd follows the SIGTERM of a stop with SIGCONT, so a frozen s_server ends too.
  timeout 60 systemctl restart k3s.service
  wait_port 60
}

case "${1:-}" in
  setup)
    if [ $# -ne 2 ] || [ ! -r "$2" ]; then
      echo "usage: apiserver_standin.sh setup FAKES_SH (a readable file); got: $*" >&2
      exit 2
    fi
    setup "$2" ;;
  stop) stop ;;
  stop-after)
    case "$#:${2:-}:${4:-}" in
      4:*[!0-9]*:* | 4:*:*[!0-9]* | 4:0*:* | 4:*:0* | 4::* | 4:*:) echo "usage: apiserver_standin.sh stop-after N FILE SECONDS (N, SECONDS whole numbers > 0); got: $*" >&2; exit 2 ;;
      4:*) ;;
      *) echo "usage: apiserver_standin.sh stop-after N FILE SECONDS; got: $*" >&2; exit 2 ;;
    esac
    stop_after "$2" "$3" "$4" ;;
  restart) restart ;;
  *) echo "usage: apiserver_standin.sh setup FAKES_SH | stop | restart; got '${1:-}'" >&2; exit 2 ;;
esac

#!/bin/sh
# The API probe: GET /readyz over HTTPS with the distro's own admin kubeconfig credentials, the
# way any client reaches the API server (a client certificate, or a bearer token), timed by curl
# itself, so a distro's kubectl wrapper (a snap, `k3s kubectl`, `k0s kubectl`) costs nothing.
#   probe.sh setup KUBECONFIG DIR  write DIR/curl.conf (+ CA, certificate and key files, root only)
#   probe.sh once DIR              one probe; one TSV line on stdout:
#                                  probe <ok 1|0> <latency ms> <start, unix ms> <error>
# The kit runs it right after each memory sample, so its process never lands in that sample.
set -eu

# One value of the first entry with KEY in a kubeconfig (kubectl's own files: one cluster, one user).
kube_value() { # FILE KEY
  awk -v key="$2" '
    { line = $0; sub(/^[ \t-]*/, "", line) }
    index(line, key ":") == 1 {
      v = substr(line, length(key) + 2); sub(/^[ \t]+/, "", v); sub(/[ \t]+$/, "", v)
      if (v ~ /^".*"$/ || v ~ /^'\''.*'\''$/) v = substr(v, 2, length(v) - 2)
      print v; exit
    }' "$1"
}

setup() { # KUBECONFIG DIR
  [ -r "$1" ] || { echo "probe: no kubeconfig at $1" >&2; return 1; }
  umask 077
  mkdir -p "$2"
  server=$(kube_value "$1" server)
  [ -n "$server" ] || { echo "probe: no server in $1" >&2; return 1; }
  {
    printf 'url = "%s/readyz"\n' "${server%/}"
    printf 'silent\nshow-error\nmax-time = 10\nconnect-timeout = 5\noutput = "/dev/null"\n'
    printf 'write-out = "%%{http_code} %%{time_total}\\n"\n'
  } > "$2/curl.conf"
  # Each credential is inline (*-data, base64) or a path: k3s and k0s write data, microk8s
  # writes data too (create_kubeconfig_x509), older kubeconfigs paths.
  for pair in certificate-authority:ca.crt:cacert client-certificate:client.crt:cert client-key:client.key:key; do
    key=${pair%%:*} rest=${pair#*:}
    file=${rest%%:*} opt=${rest#*:}
    data=$(kube_value "$1" "$key-data")
    path=$(kube_value "$1" "$key")
    if [ -n "$data" ]; then
      printf '%s' "$data" | base64 -d > "$2/$file" || { echo "probe: bad $key-data in $1" >&2; return 1; }
      printf '%s = "%s"\n' "$opt" "$2/$file" >> "$2/curl.conf"
    elif [ -n "$path" ]; then
      printf '%s = "%s"\n' "$opt" "$path" >> "$2/curl.conf"
    fi
  done
  token=$(kube_value "$1" token)
  [ -z "$token" ] || printf 'header = "Authorization: Bearer %s"\n' "$token" >> "$2/curl.conf"
  if ! grep -q '^cert = \|^header = ' "$2/curl.conf"; then
    echo "probe: $1 holds neither a client certificate nor a token" >&2
    return 1
  fi
  grep -q '^cacert = ' "$2/curl.conf" || printf 'insecure\n' >> "$2/curl.conf"
}

once() { # DIR
  start=$(date +%s%3N)
  rc=0
  out=$(curl -K "$1/curl.conf" 2> "$1/curl.err") || rc=$?
  code=${out%% *} t=${out#* }
  # curl's time_total is seconds with decimals: whole milliseconds without awk (and without
  # reading "012" as octal: the 1 in front keeps the digits decimal).
  case "$t" in
    *.*) s=${t%%.*} f=${t#*.}000; f=${f%"${f#???}"}; ms=$((s * 1000 + 1$f - 1000)) ;;
    '' | *[!0-9]*) ms=$(( $(date +%s%3N) - start )) ;;
    *) ms=$((t * 1000)) ;;
  esac
  if [ "$rc" = 0 ] && [ "$code" = 200 ]; then
    printf 'probe\t1\t%s\t%s\t\n' "$ms" "$start"
  else
    err=$(tr '\n\t' '  ' < "$1/curl.err" | cut -c1-300)
    err=${err%"${err##*[! ]}"}  # without the space the message's own newline became
    [ -n "$err" ] || err="HTTP $code"
    printf 'probe\t0\t%s\t%s\t%s\n' "$ms" "$start" "$err"
  fi
}

case "${1:-}" in
  setup) setup "$2" "$3" ;;
  once) once "$2" ;;
  *) echo "usage: probe.sh setup KUBECONFIG DIR | probe.sh once DIR" >&2; exit 2 ;;
esac

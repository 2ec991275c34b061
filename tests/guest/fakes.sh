#!/bin/sh
# Fakes of the commands the guest kit drives, linked under each name on PATH: curl (downloads, and
# the API probe), the k3s and k0s install scripts, k3s, k0s, microk8s, snap, kubectl (as each
# distro runs it), systemctl, apt-get, dpkg-query and docker. Unlike an accept-anything stub, each
# behaves as upstream does where the kit depends on it: the exit codes, what is printed, the files
# made (unit files, kubeconfigs, MicroK8s's lock files, k3s's uninstall script), and how it fails.
# A call that upstream would refuse is refused here too (exit 1 and upstream's message), so a
# kit that sends a wrong call fails its test. The upstream file is named beside each rule.
#
# State lives in $FAKE_DIR: calls.log (every call), bin/ (what is installed: a fake is linked
# there once installed), root/ (the upstream paths, as K8SF_FS_ROOT), units/ (systemd), api/
# (the Kubernetes API's objects), images (the container runtime's image refs).
# $FAKE_SCENARIO picks a failure: see each command.
set -u
name=${FAKE_NAME:-$(basename "$0")}
F=$FAKE_DIR
R=$F/root
printf '%s %s\n' "$name" "$*" >> "$F/calls.log"
scenario=${FAKE_SCENARIO:-}
has() { case " $scenario " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
installed() { [ -e "$F/bin/$1" ]; }
install_cmd() { for c in "$@"; do ln -sf "$F/fakes.sh" "$F/bin/$c"; done; }
unit_active() { [ -e "$F/units/$1.active" ]; }
count() { _n=$(($(cat "$F/$1" 2>/dev/null || echo 0) + 1)); echo "$_n" > "$F/$1"; echo "$_n"; }

# The distro's admin kubeconfig with an inline client certificate (k3s, k0s and MicroK8s all
# write the *-data form: k0s cmd/controller/certificates.go:290-313, MicroK8s
# actions/common/utils.sh create_kubeconfig_x509). The fake API server accepts only this cert.
write_kubeconfig() { # PATH SERVER
  mkdir -p "$(dirname "$1")"
  printf 'FAKE-CA\n' > "$F/ca.pem"
  printf 'FAKE-CLIENT-CERT\n' > "$F/client.pem"
  cat > "$1" <<EOF
apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: $(base64 -w0 "$F/ca.pem")
    server: $2
  name: default
contexts:
- context: {cluster: default, user: default}
  name: default
current-context: default
kind: Config
users:
- name: default
  user:
    client-certificate-data: $(base64 -w0 "$F/client.pem")
    client-key-data: $(printf 'FAKE-KEY\n' | base64 -w0)
EOF
  printf '%s\n' "$2" > "$F/api-url"
}

# ---- the Kubernetes API, as kubectl sees it -----------------------------------------------------
api_down() { [ -e "$F/api-down" ]; }
node_up() { [ -e "$F/node" ]; }
pod_ready() {
  [ -e "$F/api/deployment" ] && [ ! -e "$F/pod-failed" ] || return 1
  # imagePullPolicy IfNotPresent: the image from the store, else a pull (none when offline).
  grep -qxF "$(normalized "$(cat "$F/api/image")")" "$F/images" 2>/dev/null || ! has offline
}
# The kubelet asks containerd for the fully qualified name (docker.io/library/mysql:8.4).
normalized() {
  case "$1" in
    */*) case "${1%%/*}" in *.* | *:* | localhost) echo "$1" ;; *) echo "docker.io/$1" ;; esac ;;
    *) echo "docker.io/library/$1" ;;
  esac
}
kube_system() {
  echo deployment.apps/coredns
  echo deployment.apps/local-path-provisioner
  # k3s's Traefik Deployment appears only when the helm-install-traefik Job has run, some time
  # after the node is Ready (k3s manifests/traefik.yaml is a HelmChart): here, the 3rd look.
  if [ -e "$F/traefik-enabled" ] && [ "$(count kube-system-looks)" -ge 3 ]; then touch "$F/traefik"; fi
  [ ! -e "$F/traefik" ] || echo deployment.apps/traefik
}
kubectl() {
  if api_down; then
    # The usual 1 GiB symptom (k3s issue 3976).
    echo "Unable to connect to the server: net/http: TLS handshake timeout" >&2
    return 1
  fi
  case "$*" in
    "get nodes -o name") if node_up; then echo node/fake; fi ;;
    "wait --for=condition=Ready node --all --timeout=25s")
      if node_up && ! has wait_timeout; then echo "node/fake condition met"
      else echo "error: timed out waiting for the condition on nodes/fake" >&2; return 1; fi ;;
    "-n kube-system get deployment -o name") kube_system ;;
    "-n kube-system wait --for=condition=Available deployment --all --timeout=25s")
      if has wait_timeout; then echo "error: timed out waiting for the condition" >&2; return 1; fi
      kube_system | sed 's/$/ condition met/' ;;
    "-n kube-system wait --for=condition=Available deployment/traefik --timeout=25s")
      kube_system > /dev/null
      if [ -e "$F/traefik" ]; then echo "deployment.apps/traefik condition met"
      else echo 'Error from server (NotFound): deployments.apps "traefik" not found' >&2; return 1; fi ;;
    "apply -f -")
      cat > "$F/applied.yaml"
      if ! grep -q '^kind: Deployment' "$F/applied.yaml" || ! grep -q '^kind: Secret' "$F/applied.yaml"; then
        echo "error: no objects passed to apply" >&2; return 1
      fi
      mkdir -p "$F/api"
      sed -n 's/^stringData: {MYSQL_ROOT_PASSWORD: "\(.*\)"}$/\1/p' "$F/applied.yaml" > "$F/api/secret"
      sed -n 's/^ *image: "\(.*\)"$/\1/p' "$F/applied.yaml" > "$F/api/image"
      touch "$F/api/deployment"
      echo "secret/k8sf-mysql created"; echo "deployment.apps/k8sf-mysql created" ;;
    "rollout status deployment/k8sf-mysql --timeout="*)
      if pod_ready; then echo 'deployment "k8sf-mysql" successfully rolled out'
      else echo "error: timed out waiting for the condition" >&2; return 1; fi ;;
    "exec deploy/k8sf-mysql -- sh -c "*)
      pod_ready || { echo 'error: unable to upgrade connection: container not found ("mysql")' >&2; return 1; }
      shift 5
      mysql_exec "$(cat "$F/api/secret")" "$1" ;;
    "get deployment k8sf-mysql -o name --ignore-not-found")
      if [ -e "$F/api/deployment" ]; then echo deployment.apps/k8sf-mysql; fi ;;
    "delete deployment/k8sf-mysql secret/k8sf-mysql --ignore-not-found --wait=true --timeout="*)
      if [ -e "$F/api/deployment" ]; then echo 'deployment.apps "k8sf-mysql" deleted'; fi
      rm -rf "$F/api" ;;
    "get pods -l app=k8sf-mysql -o name") if [ -e "$F/api/deployment" ]; then echo pod/k8sf-mysql-6d4cf56db6-x2x7q; fi ;;
    "get --raw=/readyz --request-timeout=10s") echo ok ;;  # how kits before 0.2.0 probed
    *) echo "error: the fake kubectl does not know this call: $*" >&2; return 1 ;;
  esac
}

# mysql_exec PASSWORD SCRIPT: the container's shell with a mysql client that checks the password,
# from an option file (--defaults-extra-file) or MYSQL_PWD, which MySQL 8 warns is deprecated.
mysql_exec() {
  mkdir -p "$F/ctr-bin"
  cat > "$F/ctr-bin/mysql" <<'EOF'
#!/bin/sh
pw=${MYSQL_PWD-}
[ -z "$pw" ] || echo "mysql: [Warning] Using MYSQL_PWD is deprecated" >&2
for a in "$@"; do
  case "$a" in --defaults-extra-file=*) pw=$(sed -n 's/^password=//p' "${a#*=}") ;; esac
done
[ "$pw" = "$MYSQL_ROOT_PASSWORD" ] || { echo "ERROR 1045 (28000): Access denied for user 'root'@'localhost'" >&2; exit 1; }
echo 1
EOF
  chmod +x "$F/ctr-bin/mysql"
  MYSQL_ROOT_PASSWORD=$1 PATH="$F/ctr-bin:$PATH" sh -c "$2"
}

# containerd's ctr, as k3s, k0s and microk8s run it (namespace k8s.io). An image tar here is a
# file whose first line is "FAKE-IMAGE <ref>"; anything else is refused, as ctr refuses a
# file that is not an OCI or Docker archive.
ctr() {
  case "$1 ${2:-}" in
    "image import" | "images import")
      [ -r "${3:-}" ] || { echo "ctr: open ${3:-}: no such file or directory" >&2; return 1; }
      ref=$(sed -n '1s/^FAKE-IMAGE //p' "$3")
      [ -n "$ref" ] || { echo "ctr: unrecognized image format" >&2; return 1; }
      echo "$ref" >> "$F/images"; echo "unpacking $ref (sha256:0123)...done" ;;
    "image ls" | "images ls")
      [ "${3:-}" = -q ] || { echo "ctr: the fake knows only 'ls -q'" >&2; return 1; }
      cat "$F/images" 2>/dev/null || : ;;
    *) echo "ctr: No help topic for '$1'" >&2; return 1 ;;
  esac
}

# ---- the commands -------------------------------------------------------------------------------
case "$name" in
  curl)
    conf="" out="" url="" prev=""
    for a in "$@"; do
      case "$prev" in -K) conf=$a ;; -o) out=$a ;; esac
      case "$a" in https://*) url=$a ;; esac
      prev=$a
    done
    if [ -n "$conf" ]; then
      # The API probe: GET /readyz with the kubeconfig's client certificate (curl -K).
      val() { sed -n "s/^$1 = \"\\(.*\\)\"$/\\1/p" "$conf"; }
      n=$(count probes)
      if [ -e "$F/api/deployment" ] && has api_dies_in_workload && [ "$(count probes-under-workload)" -ge 3 ]; then
        touch "$F/api-down" "$F/pod-failed"
      fi
      if [ "$(val url)" != "$(cat "$F/api-url" 2>/dev/null)/readyz" ]; then
        echo "curl: (7) Failed to connect to $(val url) port 443 after 0 ms: Couldn't connect to server" >&2
        printf '000 0.000100\n'; exit 7
      fi
      if ! cmp -s "$(val cert)" "$F/client.pem" || ! cmp -s "$(val cacert)" "$F/ca.pem"; then
        # An API server asks for a client certificate; TLS 1.3 reports its absence so.
        echo "curl: (56) OpenSSL SSL_read: error:0A00045C:SSL routines::tlsv13 alert certificate required" >&2
        printf '000 0.004\n'; exit 56
      fi
      if api_down; then
        echo "curl: (28) Operation timed out after 10000 milliseconds with 0 bytes received" >&2
        printf '000 10.000412\n'; exit 28
      fi
      printf '200 0.0%02d123\n' $((10 + n % 7)); exit 0
    fi
    if has offline; then echo "curl: (6) Could not resolve host: ${url#https://}" >&2; exit 6; fi
    case "$url" in
      https://get.k3s.io) cp "$F/k3s-install.sh" "$out" ;;
      https://get.k0s.sh) cp "$F/k0s-install.sh" "$out" ;;
      *) echo "curl: (22) The requested URL returned error: 404" >&2; exit 22 ;;
    esac ;;

  k3s-install.sh)
    # k3s-io/k3s install.sh (0136cf2): the env-var interface the kit uses.
    echo "installer https://get.k3s.io INSTALL_K3S_VERSION=${INSTALL_K3S_VERSION-} INSTALL_K3S_EXEC=${INSTALL_K3S_EXEC-} INSTALL_K3S_SKIP_DOWNLOAD=${INSTALL_K3S_SKIP_DOWNLOAD-}" >> "$F/calls.log"
    if [ "${INSTALL_K3S_SKIP_DOWNLOAD-}" = true ]; then
      # download_and_verify -> verify_k3s_is_executable
      installed k3s || { echo "[ERROR]  Executable k3s binary not found at /usr/local/bin/k3s" >&2; exit 1; }
    else
      # download_and_verify: verify_downloader curl || verify_downloader wget || fatal
      command -v curl >/dev/null 2>&1 || { echo "[ERROR]  Can not find curl or wget for downloading files" >&2; exit 1; }
      # get_release_version takes INSTALL_K3S_VERSION as the release tag; download() of a tag that
      # does not exist fails: fatal 'Download failed'. Without it, the stable channel.
      case "${INSTALL_K3S_VERSION:-v1.31.4+k3s1}" in
        v1.31.4+k3s1 | v1.32.3+k3s1) echo "${INSTALL_K3S_VERSION:-v1.31.4+k3s1}" > "$F/k3s-version" ;;
        *) echo "[ERROR]  Download failed" >&2; exit 1 ;;
      esac
      install_cmd k3s
    fi
    # setup_env: a first word that is not a flag is the command (server or agent).
    # shellcheck disable=SC2086
    set -- ${INSTALL_K3S_EXEC-}
    case "${1:-}" in -* | '') ;; server) shift ;; *) echo "[ERROR]  the fake knows only server" >&2; exit 1 ;; esac
    traefik=1
    while [ $# -gt 0 ]; do
      case "$1" in
        --disable) case "${2:-}" in traefik) traefik=0 ;; servicelb | metrics-server | local-storage | coredns) ;;
            *) echo "[ERROR]  the fake k3s server refuses --disable ${2:-}" >&2; exit 1 ;; esac; shift 2 ;;
        *) echo "[ERROR]  the fake k3s server refuses $1" >&2; exit 1 ;;
      esac
    done
    [ "$traefik" = 0 ] || touch "$F/traefik-enabled"
    # create_uninstall, create_killall, create_systemd_service_file, then systemctl enable and restart.
    mkdir -p "$R/usr/local/bin" "$F/units"
    printf '#!/bin/sh\n' > "$R/usr/local/bin/k3s-uninstall.sh"
    printf '#!/bin/sh\n' > "$R/usr/local/bin/k3s-killall.sh"
    touch "$F/units/k3s.service" "$F/units/k3s.service.enabled" "$F/units/k3s.service.active"
    # The k3s server writes its admin kubeconfig when it starts (--write-kubeconfig).
    write_kubeconfig "$R/etc/rancher/k3s/k3s.yaml" https://127.0.0.1:6443
    touch "$F/node" ;;

  k3s)
    installed k3s || { echo "sh: 1: k3s: not found" >&2; exit 127; }
    case "${1:-}" in
      --version) echo "k3s version $(cat "$F/k3s-version") (fake)"; echo "go version go1.23.4" ;;
      kubectl) shift; kubectl "$@" ;;
      ctr) shift; ctr "$@" ;;
      *) echo "Incorrect Usage: the fake k3s does not know '$*'" >&2; exit 1 ;;
    esac ;;

  k0s-install.sh)
    # get.k0s.sh: K0S_VERSION picks the release; a tag that does not exist is a 404 (curl -sSLf).
    echo "installer https://get.k0s.sh K0S_VERSION=${K0S_VERSION-}" >> "$F/calls.log"
    case "${K0S_VERSION:-v1.31.3+k0s.0}" in
      v1.31.3+k0s.0 | v1.32.7+k0s.0) echo "${K0S_VERSION:-v1.31.3+k0s.0}" > "$F/k0s-version" ;;
      *) echo "curl: (22) The requested URL returned error: 404" >&2; exit 22 ;;
    esac
    install_cmd k0s ;;

  k0s)
    installed k0s || { echo "sh: 1: k0s: not found" >&2; exit 127; }
    case "$*" in
      version) cat "$F/k0s-version" ;;
      "install controller"*)
        # pkg/install/service.go InstallService: an existing service is an error without --force.
        if [ -e "$F/units/k0scontroller.service" ]; then
          echo "Error: failed to install controller service: Init already exists: /etc/systemd/system/k0scontroller.service" >&2; exit 1
        fi
        mkdir -p "$F/units"; touch "$F/units/k0scontroller.service" "$F/units/k0scontroller.service.enabled"
        # --single implies --enable-worker (cmd/controller/controller_test.go:79): else no kubelet, no node.
        case " $* " in *" --single "* | *" --enable-worker "*) touch "$F/k0s-worker" ;; esac ;;
      start)
        [ -e "$F/units/k0scontroller.service" ] || { echo "Error: failed to start service: the service is not installed" >&2; exit 1; }
        touch "$F/units/k0scontroller.service.active"
        write_kubeconfig "$R/var/lib/k0s/pki/admin.conf" https://localhost:6443
        [ ! -e "$F/k0s-worker" ] || touch "$F/node" ;;
      stop) rm -f "$F/units/k0scontroller.service.active" ;;
      reset)
        # cmd/reset/reset.go:60-88: root only; refused while k0s runs; a reboot recommended.
        if unit_active k0scontroller.service; then echo "Error: k0s seems to be running! please stop k0s before reset." >&2; exit 1; fi
        rm -rf "$R/var/lib/k0s" "$F/units/k0scontroller.service"*
        echo 'level=warning msg="To ensure a full reset, a node reboot is recommended."' >&2 ;;
      kubectl\ *) shift; kubectl "$@" ;;
      ctr\ *) shift; ctr "$@" ;;
      *) echo "Error: unknown command \"$1\" for \"k0s\"" >&2; exit 1 ;;
    esac ;;

  snap)
    case "$*" in
      "wait system seed.loaded") ;;
      "install microk8s"*)
        # snapd overlord/snapstate/conflict.go ChangeConflictError: another change holds the snap.
        if has snap_busy && [ "$(count snap-busy)" -le 2 ]; then
          echo 'error: snap "microk8s" has "auto-refresh" change in progress' >&2; exit 1
        fi
        case " $* " in *" --classic "*) ;; *)
          echo 'error: This revision of snap "microk8s" was published using classic confinement and thus may perform arbitrary system changes outside of the security sandbox that snaps are usually confined to, which may put your system at risk.' >&2
          echo 'If you understand and want to proceed repeat the command including --classic.' >&2; exit 1 ;;
        esac
        channel=latest/stable
        for a in "$@"; do case "$a" in --channel=*) channel=${a#--channel=} ;; esac; done
        case "$channel" in
          1.31/stable | 1.32/stable | 1.32/candidate | latest/stable) ;;
          *) echo "error: requested channel \"$channel\" is not available for snap \"microk8s\"" >&2; exit 1 ;;
        esac
        if installed microk8s; then echo "snap \"microk8s\" is already installed, see 'snap help refresh'"; exit 0; fi
        install_cmd microk8s
        echo "v1.32.3" > "$F/microk8s-version"
        # The install hook (snap/hooks/install:124-130, v1.32): no-etcd, no-flanneld,
        # no-apiserver-proxy, ha-cluster and lite.lock; and the admin kubeconfig.
        mkdir -p "$R/var/snap/microk8s/current/var/lock" "$F/units"
        for l in no-etcd no-flanneld no-apiserver-proxy ha-cluster lite.lock; do touch "$R/var/snap/microk8s/current/var/lock/$l"; done
        write_kubeconfig "$R/var/snap/microk8s/current/credentials/client.config" https://127.0.0.1:16443
        for u in kubelite containerd k8s-dqlite; do touch "$F/units/snap.microk8s.daemon-$u.service.active"; done
        touch "$F/node"
        echo "microk8s (1.32/stable) v1.32.3 from Canonical** installed" ;;
      "list microk8s")
        installed microk8s || { echo "error: no matching snaps installed" >&2; exit 1; }
        printf 'Name      Version  Rev   Tracking     Publisher   Notes\nmicrok8s  %s  7964  1.32/stable  canonical** classic\n' "$(cat "$F/microk8s-version")" ;;
      "refresh --hold"*) echo "General refreshes of all snaps held indefinitely." ;;
      "remove --purge microk8s") rm -f "$F/bin/microk8s"; rm -rf "$R/var/snap/microk8s" ;;
      *) echo "error: the fake snap does not know: $*" >&2; exit 1 ;;
    esac ;;

  microk8s)
    installed microk8s || { echo "sh: 1: /snap/bin/microk8s: not found" >&2; exit 127; }
    L=$R/var/snap/microk8s/current/var/lock
    case "$*" in
      status*)
        # scripts/wrappers/status.py: print_pretty; exit 1 when not ready (lines 211-237).
        if has wait_timeout || [ ! -e "$F/node" ]; then
          echo "microk8s is not running. Use microk8s inspect for a deeper inspection."; exit 1
        fi
        echo "microk8s is running"
        echo "high-availability: no"
        echo "addons:"; echo "  enabled:"
        [ ! -e "$L/ha-cluster" ] || echo "    ha-cluster           # (core) Configure high availability on the current node"
        echo "  disabled:"
        [ -e "$L/ha-cluster" ] || echo "    ha-cluster           # (core) Configure high availability on the current node" ;;
      "disable ha-cluster"*)
        # microk8s-core-addons addons/ha-cluster/disable: refuses on one node without --force (exit 2).
        case " $* " in *" --force "*) ;; *)
          echo "Disabling HA will reset your cluster in a clean state."
          echo "please use the '--force' flag."; exit 2 ;;
        esac
        echo "Reverting to a non-HA setup"
        # The cluster is wiped: whatever was deployed is gone.
        rm -rf "$F/api"
        if has ha_disable_dies; then
          # microk8s-leave.wrapper fails under set -eu: the script stops before it removes the lock.
          echo "Error: failed to leave the cluster" >&2; exit 1
        fi
        echo "Enabling flanneld and etcd"
        if ! has ha_switch_fails; then
          rm -f "$L/no-etcd" "$L/no-flanneld"
          touch "$F/units/snap.microk8s.daemon-etcd.service.active" "$F/units/snap.microk8s.daemon-flanneld.service.active"
        fi
        # The upgrade's status is tee's (a pipeline): a failed switch still removes the lock.
        rm -f "$L/ha-cluster"
        echo "HA disabled" ;;
      "enable dns") echo "DNS is enabled" ;;
      kubectl\ *) shift; kubectl "$@" ;;
      ctr\ *) shift; ctr "$@" ;;
      "images import"*)
        # scripts/wrappers/images.py:20-21 reads the whole tar; distributed_op.py:147-148 prints
        # a failed import and exits 0 all the same.
        tmp=$F/stdin.tar; cat > "$tmp"
        ref=$(sed -n '1s/^FAKE-IMAGE //p' "$tmp")
        if [ -n "$ref" ]; then echo "$ref" >> "$F/images"; echo "Pushing OCI images to 127.0.0.1:25000"
        else echo "Failed to import images on 127.0.0.1:25000: ctr: unrecognized image format"; fi ;;
      *) echo "the fake microk8s does not know: $*" >&2; exit 1 ;;
    esac ;;

  systemctl)
    case "${1:-}" in
      is-enabled) [ "${2:-}" = --quiet ] && shift; [ -e "$F/units/$2.enabled" ] ;;
      is-active) [ "${2:-}" = --quiet ] && shift; unit_active "$2" ;;
      cat) [ -e "$F/units/$2" ] ;;
      is-system-running)
        if has boot_degraded; then echo degraded; exit 1; fi
        if has boot_hang; then sleep 600; fi
        echo running ;;
      stop | start | restart | enable | disable) ;;
      *) echo "Unknown command verb ${1:-}." >&2; exit 1 ;;
    esac ;;

  apt-get)
    # apt-get exits 100 on error (apt-get(8)). A fresh image may have no package lists: install
    # then fails until an update has run.
    case " $* " in
      *" update "*) rm -f "$F/apt-lists-empty" ;;
      *" install "*)
        if [ -e "$F/apt-lists-empty" ]; then
          for a in "$@"; do last=$a; done
          echo "E: Unable to locate package $last" >&2; exit 100
        fi
        for a in "$@"; do
          case "$a" in
            curl) install_cmd curl ;;
            ca-certificates) mkdir -p "$R/etc/ssl/certs"; touch "$R/etc/ssl/certs/ca-certificates.crt" ;;
            docker.io) install_cmd docker; mkdir -p "$F/units"; touch "$F/units/docker.service.active" "$F/docker.io" ;;
          esac
        done ;;
      *" purge "*) ;;
      *) echo "E: the fake apt-get does not know: $*" >&2; exit 100 ;;
    esac ;;

  dpkg-query)
    # dpkg-query -W -f='FORMAT' PACKAGE, the one form the kit uses (distros/docker.sh). A package is
    # installed when apt-get installed it here ($F/PACKAGE), or a test put it there (docker-ce from
    # Docker's repository). As dpkg-query 1.21.22 answers (run on this Debian 12 host): an option
    # it does not know exits 2 with "dpkg-query: error: unknown option --x" and the --help hint
    # (lib/dpkg/options.c, badusage); a package it does not know exits 1 with "no packages found
    # matching" (src/query/main.c, listpackages/showpackages). -W or --show with -f FMT,
    # -f=FMT, -fFMT, --showformat FMT or --showformat=FMT (all four forms answer alike there) are the
    # query options; ${Status} and ${Version} the fields the kit reads.
    # shellcheck disable=SC2016  # dpkg-query's own field syntax, not shell
    show=0 fmt='${binary:Package}\t${Version}\n' pkg=
    while [ $# -gt 0 ]; do
      case "$1" in
        -W | --show) show=1 ;;
        -f | --showformat) fmt=$2; shift ;;
        -f=*) fmt=${1#-f=} ;;  # what the kit sends: dpkg's parser takes '=' after a short option too
        -f*) fmt=${1#-f} ;;
        --showformat=*) fmt=${1#--showformat=} ;;
        -*) printf 'dpkg-query: error: unknown option %s\n\nUse --help for help about querying packages.\n' "$1" >&2; exit 2 ;;
        *) pkg=$1 ;;
      esac
      shift
    done
    [ "$show" = 1 ] || { echo "fakes.sh: dpkg-query without -W is not a query the kit makes" >&2; exit 2; }
    [ -n "$pkg" ] || { echo "fakes.sh: dpkg-query -W without a package lists every package; the kit never asks" >&2; exit 2; }
    [ -e "$F/$pkg" ] || { echo "dpkg-query: no packages found matching $pkg" >&2; exit 1; }
    # shellcheck disable=SC2016  # as above
    case "$fmt" in
      '${Status}') printf 'install ok installed' ;;
      '${Version}') printf '20.10.24+dfsg1-1+deb12u1+b6' ;;
      *) echo "fakes.sh: dpkg-query format '$fmt' is not one the kit uses" >&2; exit 2 ;;
    esac ;;

  docker)
    installed docker || { echo "sh: 1: docker: not found" >&2; exit 127; }
    case "$*" in
      info) unit_active docker.service || { echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2; exit 1; } ;;
      "version --format {{.Server.Version}}") echo "20.10.24+dfsg1" ;;
      "load -i "*)
        if has import_hang; then sleep 60; fi
        ref=$(sed -n '1s/^FAKE-IMAGE //p' "$3")
        [ -n "$ref" ] || { echo "open /var/lib/docker/tmp/docker-import/repositories: no such file or directory" >&2; exit 1; }
        echo "$ref" >> "$F/images"; echo "Loaded image: $ref" ;;
      "image inspect "*)
        # Docker lists docker.io/library/mysql:8.4 as mysql:8.4.
        grep -qxF -e "$3" -e "docker.io/library/$3" "$F/images" 2>/dev/null || { echo "Error: No such image: $3" >&2; exit 1; } ;;
      "ps -aq --filter name=^k8sf-mysql$") if [ -e "$F/container" ]; then echo 3f4e5d6c7b8a; fi ;;
      "rm -f k8sf-mysql") if [ -e "$F/container" ]; then rm -f "$F/container"; echo k8sf-mysql
        else echo "Error response from daemon: No such container: k8sf-mysql" >&2; exit 1; fi ;;
      "run -d --name k8sf-mysql --env-file "*)
        [ ! -e "$F/container" ] || { echo 'docker: Error response from daemon: Conflict. The container name "/k8sf-mysql" is already in use.' >&2; exit 125; }
        sed -n 's/^MYSQL_ROOT_PASSWORD=//p' "$5" > "$F/container-secret"
        touch "$F/container"; echo 3f4e5d6c7b8a ;;
      "exec k8sf-mysql sh -c "*)
        [ -e "$F/container" ] || { echo "Error response from daemon: No such container: k8sf-mysql" >&2; exit 1; }
        # Scenario container_exits: the server died under the machine-wide OOM killer and the
        # container's entrypoint exited 1 with it (as a 256 MiB sweep guest did). The daemon refuses
        # exec into a stopped container (moby daemon/exec.go, getActiveContainer).
        if has container_exits; then echo "Error response from daemon: Container 3f4e5d6c7b8a is not running" >&2; exit 1; fi
        shift 4
        mysql_exec "$(cat "$F/container-secret")" "$1" ;;
      # The one inspect the kit makes (distros/docker.sh, d_workload_exited); for a name it does not
      # know docker/cli prints "Error: No such object: NAME" and exits 1 (cli/command/system/inspect.go).
      "inspect -f {{.State.Status}} {{.State.ExitCode}} {{.State.OOMKilled}} k8sf-mysql")
        [ -e "$F/container" ] || { echo "Error: No such object: k8sf-mysql" >&2; exit 1; }
        if has container_exits; then echo "exited 1 false"; else echo "running 0 false"; fi ;;
      *) echo "docker: the fake does not know: $*" >&2; exit 1 ;;
    esac ;;

  # The kernel log, from $F/kernel.log (lines as `journalctl -o short-unix` prints them: unix seconds
  # with microseconds, host, "kernel:", the message; man journalctl, --output=short-unix), from the
  # --since time on; without -o short-unix the time reads as the short format's syslog date.
  # Refused as systemd 252's journalctl refuses them (run on this Debian 12 host; src/journal/journalctl.c
  # parse_argv, whose getopt_long prints the first): an unknown option exits 1 with "unrecognized option",
  # an unknown -o mode with "Unknown output format 'X'.", a --since it cannot parse with "Failed
  # to parse timestamp: X". The kit sends -k -q --no-pager [-o short-unix] --since @SECONDS.
  journalctl)
    since=0 unix=0
    while [ $# -gt 0 ]; do
      case "$1" in
        -k | --dmesg | -q | --quiet | --no-pager) ;;
        -o | --output)
          case "$2" in
            short) ;;
            short-unix) unix=1 ;;
            # The other modes of systemd 252 (src/shared/output-mode.c, output_mode_table).
            short-full | short-iso | short-iso-precise | short-precise | short-monotonic | short-delta | verbose \
              | export | json | json-pretty | json-sse | json-seq | cat | with-unit)
              echo "fakes.sh: journalctl -o $2 is not a mode the kit sends" >&2; exit 1 ;;
            *) echo "Unknown output format '$2'." >&2; exit 1 ;;
          esac
          shift ;;
        --since)
          case "$2" in
            @*[!0-9.]* | @ | @.*) echo "Failed to parse timestamp: $2" >&2; exit 1 ;;
            @*) since=${2#@} ;;
            *) echo "fakes.sh: journalctl --since '$2' is not the @SECONDS form the kit sends" >&2; exit 1 ;;
          esac
          shift ;;
        # An option the real one knows but the kit never sends is refused here too, with the same
        # words: a kit that starts sending one must teach this fake first.
        -*) echo "journalctl: unrecognized option '$1'" >&2; exit 1 ;;
        *) echo "fakes.sh: journalctl match '$1' is not one the kit sends" >&2; exit 1 ;;
      esac
      shift
    done
    [ -r "$F/kernel.log" ] || exit 0
    awk -v since="$since" -v unix="$unix" '$1 + 0 >= since { if (!unix) $1 = "Nov 30 05:00:00"; print }' "$F/kernel.log" ;;
  swapoff | systemd-run | dpkg) ;;
  *) echo "fakes.sh: no fake named $name" >&2; exit 1 ;;
esac

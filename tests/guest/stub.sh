#!/bin/sh
# A stand-in for the commands the guest kit drives (curl, installers, k3s, k0s, microk8s, snap,
# systemctl, apt-get, docker ...), linked under each name on PATH. It logs every call to
# $STUB_DIR/calls.log and plays $STUB_SCENARIO: ok, wait_timeout (nothing ever becomes Ready),
# probe_hang (the API server stops answering), import_hang (loading an image never ends),
# boot_degraded and boot_hang (systemd's boot ends with a failed unit, or never ends).
name=$(basename "$0")
printf '%s %s\n' "$name" "$*" >> "$STUB_DIR/calls.log"
scenario=${STUB_SCENARIO:-ok}
installed() { [ -e "$STUB_DIR/installed" ]; }

kubectl() {
  case "$*" in
    "get nodes -o name") echo node/stub ;;
    "-n kube-system get deployment -o name") echo deployment.apps/coredns ;;
    wait* | "-n kube-system wait"*) [ "$scenario" != wait_timeout ] ;;
    get\ --raw=/readyz*)
      if [ "$scenario" = probe_hang ]; then sleep 600; fi
      echo ok ;;
    apply*) cat > "$STUB_DIR/applied.yaml" ;;
    *) : ;;
  esac
}

case "$name" in
  curl)
    out="" prev="" url=""
    for a in "$@"; do
      [ "$prev" = -o ] && out=$a
      case "$a" in https://*) url=$a ;; esac
      prev=$a
    done
    # The k3s installer starts the service; k0s's only puts the binary in place.
    marker="$STUB_DIR/k0s-binary"
    case "$url" in *k3s*) marker="$STUB_DIR/installed" ;; esac
    cat > "$out" <<SCRIPT
#!/bin/sh
echo "installer $url INSTALL_K3S_VERSION=\${INSTALL_K3S_VERSION-} INSTALL_K3S_EXEC=\${INSTALL_K3S_EXEC-} K0S_VERSION=\${K0S_VERSION-}" >> "$STUB_DIR/calls.log"
touch "$marker"
SCRIPT
    ;;
  systemctl)
    case "$1" in
      is-enabled | is-active) installed && [ ! -e "$STUB_DIR/stopped" ] ;;
      is-system-running)
        case "$scenario" in
          boot_degraded) echo degraded; exit 1 ;;
          boot_hang) sleep 600 ;;
          *) echo running ;;
        esac ;;
      cat) [ -e "$STUB_DIR/k0s-unit" ] ;;
      *) : ;;
    esac ;;
  k3s)
    case "$1" in
      kubectl) shift; kubectl "$@" ;;
      --version) echo "k3s version v1.31.4+k3s1 (stub)" ;;
      *) : ;;
    esac ;;
  k0s)
    case "$1" in
      kubectl) shift; kubectl "$@" ;;
      install) touch "$STUB_DIR/k0s-unit" ;;
      start) touch "$STUB_DIR/installed" ;;
      version) [ -e "$STUB_DIR/k0s-binary" ] && echo "v1.31.3+k0s.0" ;;
      *) : ;;
    esac ;;
  microk8s)
    case "$1" in
      kubectl) shift; kubectl "$@" ;;
      status) [ "$scenario" != wait_timeout ] && echo "microk8s is running" ;;
      *) : ;;
    esac ;;
  snap)
    case "$1" in
      install) touch "$STUB_DIR/installed" ;;
      list) installed && printf 'Name Version Rev\nmicrok8s v1.32.3 7964\n' ;;
      *) : ;;
    esac ;;
  dpkg-query) installed && echo "install ok installed" ;;
  apt-get) case "$*" in *" install "*docker.io*) touch "$STUB_DIR/installed" ;; esac ;;
  docker)
    case "$1" in
      info) installed && [ ! -e "$STUB_DIR/stopped" ] ;;
      load) if [ "$scenario" = import_hang ]; then sleep 60; fi ;;
      version) echo "26.1.5+dfsg1" ;;
      *) : ;;
    esac ;;
  *) : ;;
esac

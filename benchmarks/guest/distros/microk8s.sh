# shellcheck shell=sh disable=SC2034  # D_* are read by k8sf, which sources this
# MicroK8s from the snap store. Debian has no snapd by default; Ubuntu has it.
# A version is a snap channel: a track (1.32, taken as 1.32/stable) or track/risk.
MICROK8S=${K8SF_MICROK8S:-/snap/bin/microk8s}
KUBECTL_CMD="$MICROK8S kubectl"
# $SNAP_DATA of the microk8s snap: its credentials and lock files.
MK8S_DATA="$K8SF_FS_ROOT/var/snap/microk8s/current"
# The admin kubeconfig: create_user_kubeconfigs writes it with create_kubeconfig_x509, the
# client certificate and key inline (microk8s-resources/actions/common/utils.sh:611-677, v1.32).
D_KUBECONFIG="$MK8S_DATA/credentials/client.config"
. "$KIT_DIR/lib/k8s.sh"

d_units() {
  for u in /etc/systemd/system/snap.microk8s.daemon-*.service; do
    [ ! -e "$u" ] || basename "$u"
  done
}
d_installed() { command -v snap >/dev/null 2>&1 && snap list microk8s >/dev/null 2>&1; }

# snap_retry SECONDS ARGS...: snap, retried while another change holds the snap (snapd refuses
# with 'snap "microk8s" has "..." change in progress' and exit 1, e.g. a seeding or auto-refresh
# change); any other failure is final. At most 10 tries, 30 s apart.
snap_retry() {
  _sn_t=$1
  shift
  _sn_i=1
  while :; do
    _sn_rc=0
    timeout "$_sn_t" snap "$@" > "$RUN_DIR/snap.out" 2>&1 || _sn_rc=$?
    cat "$RUN_DIR/snap.out" >&2
    [ "$_sn_rc" != 0 ] || return 0
    grep -q 'change in progress' "$RUN_DIR/snap.out" && [ "$_sn_i" -lt 10 ] || return "$_sn_rc"
    log "snap $1: another snap change is in progress; trying again in ${K8SF_SNAP_RETRY_S:-30} s ($_sn_i of 10)"
    sleep "${K8SF_SNAP_RETRY_S:-30}"
    _sn_i=$((_sn_i + 1))
  done
}

# d_found: the microk8s snap on the machine before the kit (snap list exits 1 for a snap that is
# not installed: "error: no matching snaps installed"), printed.
d_found() {
  command -v snap >/dev/null 2>&1 && snap list microk8s >/dev/null 2>&1 &&
    echo "the microk8s snap $(snap list microk8s 2>/dev/null | awk 'NR == 2 { print $2 " (" $4 ")" }')"
}
d_install() {
  if ! command -v snap >/dev/null 2>&1; then
    dpkg_recover
    retry 3 apt_get update >&2 || return 1
    retry 3 apt_get install snapd >&2 || return 1
  fi
  # The API probe reaches the API server with curl.
  need_curl || return 1
  timeout 600 snap wait system seed.loaded >&2 || return 1
  if ! snap list microk8s >/dev/null 2>&1; then
    case "${1:-}" in
      '') snap_retry 900 install microk8s --classic || return 1 ;;
      */*) snap_retry 900 install microk8s --classic --channel="$1" || return 1 ;;
      *) snap_retry 900 install microk8s --classic --channel="$1/stable" || return 1 ;;
    esac
  fi
  snap_retry 60 refresh --hold microk8s || :
  microk8s_after_install
}
# A hook for the no-HA variant, which must act before anything is deployed.
microk8s_after_install() { :; }
d_wait_ready() {
  _mw_deadline=$(( $(now_s) + $1 ))
  # status --wait-ready --timeout N exits 1 when not ready in time (scripts/wrappers/status.py:211-237).
  if ! timeout $(( $1 + 30 )) "$MICROK8S" status --wait-ready --timeout "$1" >/dev/null; then
    log "gave up waiting for microk8s status --wait-ready after $1 s"
    return 1
  fi
  _mw_left=$(( _mw_deadline - $(now_s) )); [ "$_mw_left" -gt 10 ] || _mw_left=10
  k8s_wait_ready "$_mw_left"
}
d_alive() { systemctl is-active --quiet snap.microk8s.daemon-kubelite.service; }
d_version() { snap list microk8s 2>/dev/null | awk 'NR == 2 { print $2 }'; }
d_uninstall() { bounded 600 snap remove --purge microk8s >&2 || :; }
# Not `microk8s images import`: it reads the whole tar into memory (scripts/wrappers/images.py:20-21)
# and exits 0 when the import failed (distributed_op.py:147-148 only prints). `microk8s ctr`
# is upstream's containerd client with the snap's socket and namespace k8s.io
# (microk8s-ctr.wrapper:19-21, default-args/ctr); it streams the file and fails when the import does.
d_image_import() { timeout "$WORKLOAD_TIMEOUT" "$MICROK8S" ctr image import "$1" >&2; }
d_image_present() { ctr_has_image "$1" "$MICROK8S" ctr; }

# shellcheck shell=sh
# MicroK8s from the snap store. Debian has no snapd by default; Ubuntu has it.
# A version is a snap channel track, for example 1.32 (channel 1.32/stable).
MICROK8S=${K8SF_MICROK8S:-/snap/bin/microk8s}
KUBECTL_CMD="$MICROK8S kubectl"
. "$KIT_DIR/lib/k8s.sh"

d_units() {
  for u in /etc/systemd/system/snap.microk8s.daemon-*.service; do
    [ ! -e "$u" ] || basename "$u"
  done
}
d_installed() { command -v snap >/dev/null 2>&1 && snap list microk8s >/dev/null 2>&1; }
d_install() {
  if ! command -v snap >/dev/null 2>&1; then
    dpkg_recover
    retry 3 apt_get update >&2 || return 1
    retry 3 apt_get install snapd >&2 || return 1
  fi
  timeout 600 snap wait system seed.loaded >&2 || return 1
  if [ -n "${1:-}" ]; then
    retry 3 timeout 900 snap install microk8s --classic --channel="$1/stable" >&2 || return 1
  else
    retry 3 timeout 900 snap install microk8s --classic >&2 || return 1
  fi
  timeout 60 snap refresh --hold microk8s >&2 || :
  microk8s_after_install
}
# A hook for the no-HA variant, which must act before anything is deployed.
microk8s_after_install() { :; }
d_wait_ready() {
  _mw_deadline=$(( $(now_s) + $1 ))
  if ! timeout $(( $1 + 30 )) "$MICROK8S" status --wait-ready --timeout "$1" >/dev/null; then
    log "gave up waiting for microk8s status --wait-ready after $1 s"
    return 1
  fi
  _mw_left=$(( _mw_deadline - $(now_s) )); [ "$_mw_left" -gt 10 ] || _mw_left=10
  k8s_wait_ready "$_mw_left"
}
d_alive() { systemctl is-active --quiet snap.microk8s.daemon-kubelite.service; }
d_version() { snap list microk8s 2>/dev/null | awk 'NR == 2 { print $2 }'; }
d_uninstall() { timeout 600 snap remove --purge microk8s >&2 || :; }
d_image_import() { timeout "$WORKLOAD_TIMEOUT" "$MICROK8S" images import < "$1" >&2; }

# shellcheck shell=sh
# k0s, single node: "install controller --single" runs the controller with a kubelet, so it takes
# workloads (a plain controller runs none). k0s status shows only the process, so readiness
# comes from the API.
KUBECTL_CMD="k0s kubectl"
. "$KIT_DIR/lib/k8s.sh"

d_units() { echo k0scontroller.service; }
d_installed() { timeout 30 k0s version >/dev/null 2>&1 && systemctl is-enabled --quiet k0scontroller.service 2>/dev/null; }
d_install() {
  [ -r "$CGROUP_ROOT/cgroup.controllers" ] || { log "k0s needs cgroup v2 (no $CGROUP_ROOT/cgroup.controllers)"; return 1; }
  command -v curl >/dev/null 2>&1 || { dpkg_recover; apt_get install curl >&2 || return 1; }
  if ! timeout 30 k0s version >/dev/null 2>&1; then
    retry 3 timeout 300 curl -sSf https://get.k0s.sh -o "$RUN_DIR/k0s-install.sh" || return 1
    K0S_VERSION="${1:-}" timeout 900 sh "$RUN_DIR/k0s-install.sh" >&2 || return 1
  fi
  if ! systemctl cat k0scontroller.service >/dev/null 2>&1; then
    timeout 120 k0s install controller --single >&2 || return 1
  fi
  timeout 120 k0s start >&2 || systemctl is-active --quiet k0scontroller.service
}
d_wait_ready() { k8s_wait_ready "$1"; }
d_alive() { systemctl is-active --quiet k0scontroller.service; }
d_version() { k0s version 2>/dev/null; }
d_uninstall() { k0s stop >&2 || :; k0s reset >&2 || :; }
d_image_import() { timeout "$WORKLOAD_TIMEOUT" k0s ctr images import "$1" >&2; }

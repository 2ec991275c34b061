# shellcheck shell=sh
# k3s, with the upstream installer (https://get.k3s.io). INSTALL_K3S_VERSION pins a release;
# without it the installer takes the stable channel.
K3S_EXEC=${K3S_EXEC:-}
KUBECTL_CMD="k3s kubectl"
. "$KIT_DIR/lib/k8s.sh"

d_units() { echo k3s.service; }
d_installed() { command -v k3s >/dev/null 2>&1 && systemctl is-enabled --quiet k3s.service 2>/dev/null; }
d_install() {
  command -v curl >/dev/null 2>&1 || { dpkg_recover; apt_get install curl >&2 || return 1; }
  retry 3 timeout 300 curl -sfL https://get.k3s.io -o "$RUN_DIR/k3s-install.sh" || return 1
  INSTALL_K3S_VERSION="${1:-}" INSTALL_K3S_EXEC="$K3S_EXEC" timeout 1200 sh "$RUN_DIR/k3s-install.sh" >&2
}
d_wait_ready() { k8s_wait_ready "$1"; }
d_alive() { systemctl is-active --quiet k3s.service; }
d_version() { k3s --version 2>/dev/null | awk 'NR == 1 { print $3 }'; }
d_uninstall() { [ ! -x /usr/local/bin/k3s-uninstall.sh ] || /usr/local/bin/k3s-uninstall.sh >&2; }
d_image_import() { timeout "$WORKLOAD_TIMEOUT" k3s ctr images import "$1" >&2; }

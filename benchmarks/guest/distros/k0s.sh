# shellcheck shell=sh disable=SC2034  # D_* are read by k8sf, which sources this
# k0s, single node: "install controller --single" runs the controller with a kubelet, so it takes
# workloads (a plain controller runs none). k0s status shows only the process, so readiness
# comes from the API.
KUBECTL_CMD="k0s kubectl"
# k0s cmd/controller/certificates.go kubeConfig(): the admin's client certificate and key inline.
D_KUBECONFIG="$K8SF_FS_ROOT/var/lib/k0s/pki/admin.conf"
. "$KIT_DIR/lib/k8s.sh"

d_units() { echo k0scontroller.service; }
d_installed() { timeout 30 k0s version >/dev/null 2>&1 && systemctl is-enabled --quiet k0scontroller.service 2>/dev/null; }
# d_found: k0s on the machine before the kit, printed. get.k0s.sh puts the binary in
# k0sInstallPath, /usr/local/bin; `k0s install controller` writes the unit
# /etc/systemd/system/k0scontroller.service (what d_install runs, below).
d_found() {
  for _df_bin in "$K8SF_FS_ROOT/usr/local/bin/k0s" "$(command -v k0s 2>/dev/null)"; do
    [ -z "$_df_bin" ] || [ ! -e "$_df_bin" ] || { echo "${_df_bin#"$K8SF_FS_ROOT"}"; return 0; }
  done
  systemctl cat k0scontroller.service >/dev/null 2>&1 && echo "the unit k0scontroller.service"
}
d_install() {
  [ -r "$CGROUP_ROOT/cgroup.controllers" ] || { log "k0s needs cgroup v2 (no $CGROUP_ROOT/cgroup.controllers)"; return 1; }
  need_curl || return 1
  if ! timeout 30 k0s version >/dev/null 2>&1; then
    retry 3 timeout 300 curl -sSf https://get.k0s.sh -o "$RUN_DIR/k0s-install.sh" || return 1
    K0S_VERSION="${1:-}" timeout 900 sh "$RUN_DIR/k0s-install.sh" >&2 || return 1
  fi
  # k0s install refuses an existing service without --force (pkg/install/service.go InstallService).
  if ! systemctl cat k0scontroller.service >/dev/null 2>&1; then
    timeout 120 k0s install controller --single >&2 || return 1
  fi
  timeout 120 k0s start >&2 || systemctl is-active --quiet k0scontroller.service
}
d_wait_ready() { k8s_wait_ready "$1"; }
d_alive() { systemctl is-active --quiet k0scontroller.service; }
d_version() { k0s version 2>/dev/null; }
d_uninstall() {
  bounded 120 k0s stop >&2 || :
  # k0s reset refuses while k0s runs ("k0s seems to be running! please stop k0s before reset.",
  # cmd/reset/reset.go:65-67), so wait for the service to stop first.
  wait_for 120 "k0s to stop" sh -c '! systemctl is-active --quiet k0scontroller.service' || :
  bounded 900 k0s reset >&2 || log "k0s reset failed; see its output above"
  rm -f /usr/local/bin/k0s
  # "To ensure a full reset, a node reboot is recommended." (cmd/reset/reset.go:86): k0s leaves
  # mounts, network interfaces and iptables rules. The kit's uninstall runs when the instance is
  # done with, so reboot it a little later, after this command has returned.
  log "k0s reset: rebooting in 30 s, as k0s recommends after a reset"
  bounded 30 systemd-run --on-active=30 --unit=k8sf-k0s-reboot /bin/systemctl reboot >/dev/null 2>&1 || :
}
# k0s ctr's default namespace is k8s.io (cmd/ctr/ctr.go:63-64).
d_image_import() { timeout "$WORKLOAD_TIMEOUT" k0s ctr images import "$1" >&2; }
d_image_present() { ctr_has_image "$1" k0s ctr; }

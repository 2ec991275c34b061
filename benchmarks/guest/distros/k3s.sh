# shellcheck shell=sh disable=SC2034  # D_* are read by k8sf, which sources this
# k3s, with the upstream installer (https://get.k3s.io, k3s-io/k3s install.sh). INSTALL_K3S_VERSION
# pins a release; without it the installer takes the stable channel (install.sh setup_env).
K3S_EXEC=${K3S_EXEC:-}
K3S_TRAEFIK=${K3S_TRAEFIK:-1}
KUBECTL_CMD="k3s kubectl"
# Written by the k3s server at start (--write-kubeconfig default), with the admin's client
# certificate and key inline.
D_KUBECONFIG="$K8SF_FS_ROOT/etc/rancher/k3s/k3s.yaml"
. "$KIT_DIR/lib/k8s.sh"

d_units() { echo k3s.service; }
d_installed() { command -v k3s >/dev/null 2>&1 && systemctl is-enabled --quiet k3s.service 2>/dev/null; }
# d_found: k3s on the machine before the kit, printed. install.sh setup_env puts the binary in
# BIN_DIR, /usr/local/bin (/opt/bin when that is read-only), and the server's unit in
# SYSTEMD_DIR/SERVICE_K3S, /etc/systemd/system/k3s.service.
d_found() {
  for _df_bin in "$K8SF_FS_ROOT/usr/local/bin/k3s" "$K8SF_FS_ROOT/opt/bin/k3s" "$(command -v k3s 2>/dev/null)"; do
    [ -z "$_df_bin" ] || [ ! -e "$_df_bin" ] || { echo "${_df_bin#"$K8SF_FS_ROOT"}"; return 0; }
  done
  systemctl cat k3s.service >/dev/null 2>&1 && echo "the unit k3s.service"
}
d_install() {
  need_curl || return 1
  retry 3 timeout 300 curl -sfL https://get.k3s.io -o "$RUN_DIR/k3s-install.sh" || return 1
  # install.sh: setup_env reads INSTALL_K3S_EXEC; download_and_verify fails ("Download failed")
  # for a version with no release; it ends with systemctl enable and restart of k3s.service.
  INSTALL_K3S_VERSION="${1:-}" INSTALL_K3S_EXEC="$K3S_EXEC" timeout 1200 sh "$RUN_DIR/k3s-install.sh" >&2
}
d_wait_ready() {
  _k3_deadline=$(( $(now_s) + $1 ))
  k8s_wait_ready "$1" || return 1
  [ "$K3S_TRAEFIK" = 1 ] || return 0
  # Traefik is a HelmChart (manifests/traefik.yaml) that the helm-install-traefik Job turns into
  # the traefik Deployment some time after the node is Ready, so "every kube-system Deployment"
  # above may not have included it yet.
  _k3_left=$(( _k3_deadline - $(now_s) )); [ "$_k3_left" -gt 10 ] || _k3_left=10
  wait_for "$_k3_left" "Traefik to be Available" \
    kc 30 -n kube-system wait --for=condition=Available deployment/traefik --timeout=25s
}
d_alive() { systemctl is-active --quiet k3s.service; }
d_version() { k3s --version 2>/dev/null | awk 'NR == 1 { print $3 }'; }
d_uninstall() { [ ! -x /usr/local/bin/k3s-uninstall.sh ] || bounded 600 /usr/local/bin/k3s-uninstall.sh >&2; }
# k3s ctr's default namespace is k8s.io (k3s pkg/ctr/main.go, the "namespace" flag).
d_image_import() { timeout "$WORKLOAD_TIMEOUT" k3s ctr images import "$1" >&2; }
d_image_present() { ctr_has_image "$1" k3s ctr; }

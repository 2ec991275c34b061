# shellcheck shell=sh
# MicroK8s without the ha-cluster add-on: a single-node datastore and network instead of dqlite and Calico.
# "disable ha-cluster" wipes the cluster on a single node, so it runs straight after install,
# before anything is deployed; DNS is enabled again afterwards.
. "$KIT_DIR/distros/microk8s.sh"

microk8s_after_install() {
  if "$MICROK8S" status 2>/dev/null | grep -q 'ha-cluster.*disabled' ||
    [ -e "$STATE_DIR/ha-disabled" ]; then
    return 0
  fi
  timeout $(( INSTALL_TIMEOUT > 300 ? INSTALL_TIMEOUT : 300 )) "$MICROK8S" status --wait-ready --timeout 300 >/dev/null || return 1
  timeout 900 "$MICROK8S" disable ha-cluster --force >&2 || return 1
  touch "$STATE_DIR/ha-disabled"
  timeout 600 "$MICROK8S" status --wait-ready --timeout 540 >/dev/null || return 1
  timeout 600 "$MICROK8S" enable dns >&2
}

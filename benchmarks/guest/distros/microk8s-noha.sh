# shellcheck shell=sh
# MicroK8s without the ha-cluster add-on: etcd and flanneld instead of dqlite and Calico.
# "disable ha-cluster" wipes the cluster on a single node, so it runs straight after install,
# before anything is deployed; DNS is enabled again afterwards.
. "$KIT_DIR/distros/microk8s.sh"

# Upstream's own signal that HA is on: the lock file $SNAP_DATA/var/lock/ha-cluster. The snap's
# install hook creates it, with no-etcd and no-flanneld (snap/hooks/install:124-130, v1.32);
# scripts/wrappers/common/utils.py:91-93 is_ha_enabled() tests it. ha-cluster's disable script
# (microk8s-core-addons addons/ha-cluster/disable) removes it on its last lines, even when the
# switch to etcd and flanneld failed (its check reads tee's status), so those two services must
# run as well (apps daemon-etcd and daemon-flanneld, snap/snapcraft.yaml:321,324). The default
# `microk8s status` lists add-ons under "enabled:"/"disabled:" headings (status.py print_pretty),
# so a grep for "ha-cluster.*disabled" never matched it.
microk8s_ha_off() {
  [ ! -e "$MK8S_DATA/var/lock/ha-cluster" ] &&
    systemctl is-active --quiet snap.microk8s.daemon-etcd.service &&
    systemctl is-active --quiet snap.microk8s.daemon-flanneld.service
}

# Installed means installed without HA: a re-run after a disable that failed part-way does it again.
d_installed() { command -v snap >/dev/null 2>&1 && snap list microk8s >/dev/null 2>&1 && microk8s_ha_off; }

microk8s_after_install() {
  if microk8s_ha_off; then
    log "MicroK8s HA is already off (no ha-cluster lock, etcd and flanneld active)"
    return 0
  fi
  timeout $(( INSTALL_TIMEOUT > 300 ? INSTALL_TIMEOUT : 300 )) "$MICROK8S" status --wait-ready --timeout 300 >/dev/null || return 1
  # Without --force, disable refuses on a single node and exits 2 (addons/ha-cluster/disable:31-38).
  timeout 900 "$MICROK8S" disable ha-cluster --force >&2 || return 1
  # The disable script's own exit status hides a failed switch (its `| tee` takes the status),
  # so check upstream's signal instead.
  wait_for "${K8SF_HA_WAIT:-300}" "etcd and flanneld to run with the ha-cluster lock gone" microk8s_ha_off || return 1
  timeout 600 "$MICROK8S" status --wait-ready --timeout 540 >/dev/null || return 1
  timeout 600 "$MICROK8S" enable dns >&2
}

# shellcheck shell=sh disable=SC2034  # D_* and WORKLOAD_* are read by k8sf, which sources this
# The bare OS: nothing to install; the row every footprint is measured against.
D_KUBERNETES=0
D_WORKLOAD=0
d_units() { :; }
d_installed() { return 0; }
d_found() { return 1; }  # nothing to find: the bare OS is never preinstalled
d_install() { :; }
d_wait_ready() { return 0; }
d_alive() { return 0; }
d_version() { :; }
d_uninstall() { :; }

# shellcheck shell=sh
# k3s without its optional add-ons: Traefik, ServiceLB and metrics-server.
K3S_EXEC="--disable traefik --disable servicelb --disable metrics-server"
K3S_TRAEFIK=0
. "$KIT_DIR/distros/k3s.sh"

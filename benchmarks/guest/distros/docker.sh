# shellcheck shell=sh disable=SC2034  # D_* and WORKLOAD_* are read by k8sf, which sources this
# Docker from the OS's own docker.io package (Debian and Ubuntu, amd64 and arm64).
D_KUBERNETES=0
D_WORKLOAD=1
d_units() { echo docker.service containerd.service; }
d_installed() { command -v docker >/dev/null 2>&1 && dpkg-query -W -f='${Status}' docker.io 2>/dev/null | grep -q 'ok installed'; }
# d_found: Docker on the machine before the kit, printed. Debian's and Ubuntu's docker.io (what
# d_install installs, /usr/bin/docker), Docker's own docker-ce (download.docker.com, per
# https://docs.docker.com/engine/install/debian/), or any docker binary on PATH.
d_found() {
  for _df_pkg in docker.io docker-ce; do
    if dpkg-query -W -f='${Status}' "$_df_pkg" 2>/dev/null | grep -q 'ok installed'; then
      echo "the $_df_pkg package"
      return 0
    fi
  done
  _df_bin=$(command -v docker 2>/dev/null) || return 1
  echo "$_df_bin"
}
d_install() {
  [ -z "${1:-}" ] || log "docker: --version is ignored; the OS package docker.io decides the version"
  dpkg_recover
  retry 3 apt_get update >&2 || return 1
  # apparmor is only a recommendation of docker.io, but where the kernel enables AppArmor (Debian
  # 12 does) dockerd cannot load its container profile without apparmor_parser, and no container
  # starts.
  # ca-certificates is only a recommendation of docker.io, so --no-install-recommends leaves it
  # out on an image without it, and then no pull over HTTPS can check the registry's certificate.
  retry 3 apt_get install --no-install-recommends docker.io apparmor ca-certificates >&2
}
d_wait_ready() { wait_for "$1" "the Docker daemon (docker info)" timeout 20 docker info; }
d_alive() { systemctl is-active --quiet docker.service && timeout 20 docker info >/dev/null 2>&1; }
d_version() { timeout 20 docker version --format '{{.Server.Version}}' 2>/dev/null || dpkg-query -W -f='${Version}' docker.io; }
d_uninstall() {
  bounded 1800 env DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=600 purge docker.io containerd runc >&2 || :
  rm -rf /var/lib/docker /var/lib/containerd
}

d_image_import() { timeout "$WORKLOAD_TIMEOUT" docker load -i "$1" >&2; }
d_image_present() { timeout 60 docker image inspect "$1" >/dev/null; }

# The workload: one container, the same image and arguments as the Kubernetes Deployment.
d_workload_deploy() {
  timeout 60 docker rm -f k8sf-mysql >/dev/null 2>&1 || :
  # The password travels in a root-only env file, never on a command line.
  # shellcheck disable=SC2086
  timeout 900 docker run -d --name k8sf-mysql --env-file "$WORKLOAD_ENV" "$1" $WORKLOAD_ARGS >&2
}
d_workload_sql() { timeout 20 docker exec k8sf-mysql sh -c "$MYSQL_CHECK" >/dev/null 2>&1; }
# d_workload_exited: the container stopped for good (it runs with no restart policy), printed with
# its exit code and whether its own cgroup's OOM killer ended it (State.OOMKilled; a kill by the
# machine-wide OOM killer leaves it false, and the phase's oom_kill count says so).
d_workload_exited() {
  _dwe=$(timeout 20 docker inspect -f '{{.State.Status}} {{.State.ExitCode}} {{.State.OOMKilled}}' k8sf-mysql) || return 1
  case "$_dwe" in
    exited\ * | dead\ *) ;;
    *) return 1 ;;
  esac
  # shellcheck disable=SC2086  # three words, split on purpose
  set -- $_dwe
  echo "its container $1 with code $2 (OOMKilled $3)"
}
# A previous run's workload, for the clean slate before idle.
d_workload_present() { [ -n "$(timeout 60 docker ps -aq --filter name=^k8sf-mysql\$)" ]; }
d_workload_remove() { timeout 120 docker rm -f k8sf-mysql >&2; }
d_workload_gone() { [ -z "$(timeout 60 docker ps -aq --filter name=^k8sf-mysql\$)" ]; }

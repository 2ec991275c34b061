# shellcheck shell=sh disable=SC2034  # D_* and WORKLOAD_* are read by k8sf, which sources this
# What the Kubernetes distros share: readiness of kube-system and the MySQL Deployment. Each distro
# file sets KUBECTL_CMD (its kubectl) and D_KUBECONFIG (its admin kubeconfig, which the API probe
# reads: lib/probe.sh) before sourcing this.

# kc SECONDS ARGS...: the distro's kubectl, bounded (an API server starved of memory hangs).
kc() {
  _kc_t=$1
  shift
  # shellcheck disable=SC2086  # KUBECTL_CMD is a command and its first argument
  timeout "$_kc_t" $KUBECTL_CMD "$@"
}
D_KUBERNETES=1
D_WORKLOAD=1

# Ready means: a node exists, every node is Ready, and kube-system's Deployments are Available.
# Pods are not waited on as a whole: k3s's Helm jobs leave Completed pods behind.
k8s_wait_ready() {
  _kw_deadline=$(( $(now_s) + $1 ))
  wait_for "$1" "a node to register" k8s_has_node || return 1
  _kw_left=$(( _kw_deadline - $(now_s) )); [ "$_kw_left" -gt 10 ] || _kw_left=10
  wait_for "$_kw_left" "every node to be Ready" \
    kc 30 wait --for=condition=Ready node --all --timeout=25s || return 1
  _kw_left=$(( _kw_deadline - $(now_s) )); [ "$_kw_left" -gt 10 ] || _kw_left=10
  wait_for "$_kw_left" "kube-system Deployments to be Available" k8s_system_available
}
k8s_has_node() { [ -n "$(kc 30 get nodes -o name 2>/dev/null)" ]; }
k8s_system_available() {
  [ -n "$(kc 30 -n kube-system get deployment -o name 2>/dev/null)" ] &&
    kc 30 -n kube-system wait --for=condition=Available deployment --all --timeout=25s
}

k8s_workload_deploy() {
  _kd_pw=$(sed -n 's/^MYSQL_ROOT_PASSWORD=//p' "$WORKLOAD_ENV")
  _kd_args=""
  for _kd_a in $WORKLOAD_ARGS; do _kd_args="$_kd_args, \"$_kd_a\""; done
  _kd_args=${_kd_args#, }
  # The manifest goes on stdin: the password never appears on a command line.
  kc 120 apply -f - >&2 <<MANIFEST
apiVersion: v1
kind: Secret
metadata: {name: k8sf-mysql}
stringData: {MYSQL_ROOT_PASSWORD: "$_kd_pw"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: k8sf-mysql, labels: {app: k8sf-mysql}}
spec:
  replicas: 1
  selector: {matchLabels: {app: k8sf-mysql}}
  template:
    metadata: {labels: {app: k8sf-mysql}}
    spec:
      containers:
        - name: mysql
          image: "$1"
          imagePullPolicy: IfNotPresent
          args: [$_kd_args]
          envFrom: [{secretRef: {name: k8sf-mysql}}]
MANIFEST
}
k8s_workload_rollout() { kc $(( $1 + 30 )) rollout status deployment/k8sf-mysql --timeout="${1}s" >&2; }
k8s_workload_sql() { kc 20 exec deploy/k8sf-mysql -- sh -c "$MYSQL_CHECK" >/dev/null 2>&1; }
# A previous run's workload, for the clean slate before idle.
k8s_workload_present() { [ -n "$(kc 30 get deployment k8sf-mysql -o name --ignore-not-found)" ]; }
k8s_workload_remove() {
  kc 150 delete deployment/k8sf-mysql secret/k8sf-mysql --ignore-not-found --wait=true --timeout=120s >&2
}
k8s_workload_gone() { [ -z "$(kc 30 get pods -l app=k8sf-mysql -o name)" ]; }
d_workload_deploy() { k8s_workload_deploy "$1"; }
d_workload_sql() { k8s_workload_sql; }
# A crashed pod is restarted by the kubelet (the Deployment's restartPolicy Always), so the wait for
# SELECT 1 goes on to its bound.
d_workload_exited() { return 1; }
d_workload_present() { k8s_workload_present; }
d_workload_remove() { k8s_workload_remove; }
d_workload_gone() { k8s_workload_gone; }

# containerd_ref IMAGE: the name containerd stores an image under (docker.io/library/mysql:8.4 for
# mysql:8.4), as `ctr image ls -q` lists it.
containerd_ref() {
  _cr=$1
  case "${_cr%%/*}" in
    "$_cr") _cr="docker.io/library/$_cr" ;;                   # mysql:8.4
    *.* | *:* | localhost) ;;                                   # a registry host
    *) _cr="docker.io/$_cr" ;;                                  # user/image
  esac
  case "${_cr##*/}" in *:* | *@*) ;; *) _cr="$_cr:latest" ;; esac
  printf '%s\n' "$_cr"
}
# ctr_has_image IMAGE CTR...: is IMAGE in that containerd's images (the distro's ctr, whose
# namespace is k8s.io, where the kubelet looks)?
ctr_has_image() {
  _ch_ref=$(containerd_ref "$1")
  shift
  timeout 60 "$@" image ls -q | grep -qxF "$_ch_ref"
}

# shellcheck shell=sh disable=SC2034  # D_* and WORKLOAD_* are read by k8sf, which sources this
# What the Kubernetes distros share: readiness of kube-system, the API probe and the MySQL
# Deployment. Each distro file sets KUBECTL_CMD (its kubectl) before sourcing this.

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

# API probe: prints "ok latency_ms error".
k8s_probe() {
  _kp_t0=$(now_ms)
  if _kp_out=$(kc 20 get --raw=/readyz --request-timeout=10s 2>&1); then
    echo "1 $(( $(now_ms) - _kp_t0 ))"
  else
    _kp_rc=$?
    [ "$_kp_rc" = 124 ] && _kp_out="no answer within 20 s${_kp_out:+: $_kp_out}"
    echo "0 $(( $(now_ms) - _kp_t0 )) $(printf '%s' "$_kp_out" | tr '\n' ' ' | cut -c1-300)"
  fi
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
k8s_workload_sql() {
  # shellcheck disable=SC2016  # expanded inside the container, where the password lives
  kc 20 exec deploy/k8sf-mysql -- sh -c \
    'MYSQL_PWD="$MYSQL_ROOT_PASSWORD" mysql -h127.0.0.1 -uroot -e "SELECT 1"' >/dev/null 2>&1
}
d_workload_deploy() { k8s_workload_deploy "$1"; }
d_workload_sql() { k8s_workload_sql; }
d_probe() { k8s_probe; }

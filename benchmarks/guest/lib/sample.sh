#!/bin/sh
# One memory sample: /proc/meminfo, the working set of the given systemd units' cgroups (plus
# kubepods and docker's container scopes when they exist), and the ten largest processes.
# Usage: sample.sh [--tsv] [UNIT ...]
# It is one sh, one cat and one awk, so sampling costs the 1 GiB guest next to nothing.
set -eu

here=$(dirname "$0")
fmt=json
if [ "${1:-}" = --tsv ]; then
  fmt=tsv
  shift
fi

cg=${K8SF_CGROUP_ROOT:-/sys/fs/cgroup}
set -- "$@" __end__
args=""
for unit in "$@"; do
  [ "$unit" = __end__ ] && break
  if [ -r "$cg/system.slice/$unit/memory.current" ]; then
    args="$args cg=$unit $cg/system.slice/$unit/memory.current $cg/system.slice/$unit/memory.stat"
  fi
done
for pods in "$cg/kubepods.slice" "$cg/kubepods"; do
  if [ -r "$pods/memory.current" ]; then
    args="$args cg=kubepods $pods/memory.current $pods/memory.stat"
    break
  fi
done
for scope in "$cg"/system.slice/docker-*.scope; do
  if [ -r "$scope/memory.current" ]; then
    args="$args cg=docker-containers $scope/memory.current $scope/memory.stat"
  fi
done

# Cgroup paths hold no spaces or glob characters, so word splitting of $args is what we want.
# shellcheck disable=SC2086
cat /proc/[0-9]*/status 2>/dev/null |
  awk -v fmt="$fmt" -v ts="$(date +%s%3N)" -f "$here/sample.awk" /proc/meminfo $args cg= -

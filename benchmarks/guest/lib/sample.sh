#!/bin/sh
# One memory sample: /proc/meminfo, the working set of the given systemd units' cgroups (plus
# kubepods and Docker's container scopes when they exist), and with --top the ten largest
# processes. TSV lines (mem, cg, proc) with --tsv, else one JSON document.
# The mem line ends with the free pages parked on the kernel's per-CPU lists (the "count" of each
# pageset in /proc/zoneinfo): neither MemFree nor MemAvailable counts them, so they read as used.
# Usage: sample.sh [--tsv] [--top] [UNIT ...]
# Every interval it is a single dash reading a few files with builtins: no awk, no other process,
# so sampling costs the 1 GiB guest next to nothing. awk runs only for --top and for JSON.
set -eu

here=${0%/*}
cg=${K8SF_CGROUP_ROOT:-/sys/fs/cgroup}
# The kit sets K8SF_PAGE_KIB once, so sampling stays free of getconf.
page_kib=${K8SF_PAGE_KIB:-$(( $(getconf PAGESIZE) / 1024 ))}
fmt=json top=0
while [ $# -gt 0 ]; do
  case "$1" in
    --tsv) fmt=tsv ;;
    --top) top=1 ;;
    *) break ;;
  esac
  shift
done
[ "$fmt" = tsv ] || top=1

# Working set of a cgroup in KiB: memory.current - inactive_file (what the kubelet evicts on).
ws_kib() {
  read -r _cur < "$1/memory.current" || return 1
  _inactive=0
  while read -r _key _value; do
    if [ "$_key" = inactive_file ]; then _inactive=$_value; break; fi
  done < "$1/memory.stat"
  echo $(( (_cur - _inactive) / 1024 ))
}

collect() {
  total=0 avail=0 free=0 buffers=0 cached=0 srecl=0
  while read -r key value _; do
    case "$key" in
      MemTotal:) total=$value ;;
      MemFree:) free=$value ;;
      MemAvailable:) avail=$value ;;
      Buffers:) buffers=$value ;;
      Cached:) cached=$value ;;
      SReclaimable:) srecl=$value ;;
    esac
  done < /proc/meminfo
  pcp=0
  while read -r key value _; do
    [ "$key" != count: ] || pcp=$((pcp + value))
  done < /proc/zoneinfo
  printf 'mem\t%s\t%s\t%s\t%s\t%s\t%s\n' "$total" $((total - avail)) "$avail" \
    $((total - free - buffers - cached - srecl)) "$free" $((pcp * page_kib))

  for unit in "$@"; do
    if [ -r "$cg/system.slice/$unit/memory.current" ] && kib=$(ws_kib "$cg/system.slice/$unit"); then
      printf 'cg\t%s\t%s\n' "$unit" "$kib"
    fi
  done
  for pods in "$cg/kubepods.slice" "$cg/kubepods"; do
    if [ -r "$pods/memory.current" ] && kib=$(ws_kib "$pods"); then
      printf 'cg\tkubepods\t%s\n' "$kib"
      break
    fi
  done
  containers="" sum=0
  for scope in "$cg"/system.slice/docker-*.scope; do
    if [ -r "$scope/memory.current" ] && kib=$(ws_kib "$scope"); then
      sum=$((sum + kib)) containers=1
    fi
  done
  [ -z "$containers" ] || printf 'cg\tdocker-containers\t%s\n' "$sum"

  if [ "$top" = 1 ]; then
    cat /proc/[0-9]*/status 2>/dev/null | awk -f "$here/top.awk"
  fi
}

if [ "$fmt" = tsv ]; then
  collect "$@"
else
  collect "$@" | awk -v ts="$(date +%s%3N)" -f "$here/sample-json.awk"
fi

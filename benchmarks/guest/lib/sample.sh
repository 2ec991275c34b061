#!/bin/sh
# One memory sample: /proc/meminfo, the working set of the given systemd units' cgroups (plus
# kubepods and Docker's container scopes when they exist), and with --top the ten largest
# processes. TSV lines (mem, cg, proc) with --tsv, else one JSON document.
# The mem line ends with the free pages parked on the kernel's per-CPU lists (the "count" of each
# pageset in /proc/zoneinfo): neither MemFree nor MemAvailable counts them, so they read as used.
# The mem line goes on with the memory pressure (PSI: /proc/pressure/memory "some avg10", "-" where
# the kernel has none), anonymous and file memory (AnonPages; Active(file) + Inactive(file)) and
# the seconds since boot (/proc/uptime), the sample's clock. A cg line carries the cgroup's anon
# and file (its memory.stat) after its working set.
# Usage: sample.sh [--tsv] [--top] [UNIT ...]
# Every interval it is a single dash reading a few files with builtins: no awk, no other process,
# so sampling costs the 1 GiB guest next to nothing. awk runs only for --top and for JSON.
set -eu

here=${0%/*}
cg=${K8SF_CGROUP_ROOT:-/sys/fs/cgroup}
psi_file=${K8SF_PSI_FILE:-/proc/pressure/memory}
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

# A cgroup in KiB, into k_ws, k_anon and k_file (variables, not output: no subshell per cgroup).
# The working set is memory.current - inactive_file (what the kubelet evicts on); anon and file
# come from memory.stat, which lists them before inactive_file (the kernel's
# Documentation/admin-guide/cgroup-v2.rst, "memory.stat").
ws_kib() {
  read -r _cur < "$1/memory.current" || return 1
  _inactive=0 k_anon=0 k_file=0
  while read -r _key _value; do
    case "$_key" in
      anon) k_anon=$((_value / 1024)) ;;
      file) k_file=$((_value / 1024)) ;;
      inactive_file) _inactive=$_value; break ;;
    esac
  done < "$1/memory.stat"
  k_ws=$(( (_cur - _inactive) / 1024 ))
}

collect() {
  total=0 avail=0 free=0 buffers=0 cached=0 srecl=0 anon=0 afile=0 ifile=0
  while read -r key value _; do
    case "$key" in
      MemTotal:) total=$value ;;
      MemFree:) free=$value ;;
      MemAvailable:) avail=$value ;;
      Buffers:) buffers=$value ;;
      Cached:) cached=$value ;;
      SReclaimable:) srecl=$value ;;
      AnonPages:) anon=$value ;;
      'Active(file):') afile=$value ;;
      'Inactive(file):') ifile=$value ;;
    esac
  done < /proc/meminfo
  pcp=0
  while read -r key value _; do
    [ "$key" != count: ] || pcp=$((pcp + value))
  done < /proc/zoneinfo
  psi=-
  if [ -r "$psi_file" ] && read -r _ psi _ < "$psi_file" 2> /dev/null; then
    case "$psi" in avg10=*) psi=${psi#avg10=} ;; *) psi=- ;; esac
  fi
  up=-
  read -r up _ < /proc/uptime || up=-
  printf 'mem\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$total" $((total - avail)) "$avail" \
    $((total - free - buffers - cached - srecl)) "$free" $((pcp * page_kib)) "$psi" "$anon" $((afile + ifile)) "$up"

  for unit in "$@"; do
    if [ -r "$cg/system.slice/$unit/memory.current" ] && ws_kib "$cg/system.slice/$unit"; then
      printf 'cg\t%s\t%s\t%s\t%s\n' "$unit" "$k_ws" "$k_anon" "$k_file"
    fi
  done
  for pods in "$cg/kubepods.slice" "$cg/kubepods"; do
    if [ -r "$pods/memory.current" ] && ws_kib "$pods"; then
      printf 'cg\tkubepods\t%s\t%s\t%s\n' "$k_ws" "$k_anon" "$k_file"
      break
    fi
  done
  containers="" sum=0 sum_anon=0 sum_file=0
  for scope in "$cg"/system.slice/docker-*.scope; do
    if [ -r "$scope/memory.current" ] && ws_kib "$scope"; then
      sum=$((sum + k_ws)) sum_anon=$((sum_anon + k_anon)) sum_file=$((sum_file + k_file)) containers=1
    fi
  done
  [ -z "$containers" ] || printf 'cg\tdocker-containers\t%s\t%s\t%s\n' "$sum" "$sum_anon" "$sum_file"

  if [ "$top" = 1 ]; then
    cat /proc/[0-9]*/status 2>/dev/null | awk -f "$here/top.awk"
  fi
}

if [ "$fmt" = tsv ]; then
  collect "$@"
else
  collect "$@" | awk -v ts="$(date +%s%3N)" -f "$here/sample-json.awk"
fi

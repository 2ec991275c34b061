# shellcheck shell=sh disable=SC2034  # STATE_DIR and CGROUP_ROOT are read by the files that source this
# Shared helpers for the guest kit: logging, waiting, JSON and the kit's state on the guest.
# Logs go to stderr; stdout carries only machine-readable results.

STATE_DIR=${K8SF_STATE_DIR:-/var/lib/k8s-footprint}
CGROUP_ROOT=${K8SF_CGROUP_ROOT:-/sys/fs/cgroup}

log() { printf '%s k8sf: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 2; }

now_ms() { date +%s%3N; }
now_s() { date +%s; }

# Record a problem for the result's "errors" list (and the log).
note_error() {
  log "recorded: $*"
  printf '%s\n' "$*" >> "$RUN_DIR/errors"
}

# The last lines of a log, on one line: the reason a step failed, for a result's errors.
last_lines() { tail -n 3 "$1" 2>/dev/null | tr '\n' ' ' | cut -c1-400; }

# why_failed RC LOG: timeout's exit 124 says nothing on its own, so name it.
why_failed() {
  if [ "$1" = 124 ]; then echo "timed out (exit 124) $(last_lines "$2")"; else last_lines "$2"; fi
}

# wait_for TIMEOUT_S WHAT CMD [ARGS...]: run CMD until it succeeds; says what it waited for when it
# gives up, and returns 1. CMD may be a shell function, so it must bound each try itself (kc and
# the kit's checks do; plain commands go through timeout).
wait_for() {
  _wf_timeout=$1 _wf_what=$2
  shift 2
  _wf_start=$(now_s)
  _wf_next_report=$((_wf_start + 30))
  while :; do
    if "$@" >/dev/null 2>&1; then
      log "ready: $_wf_what ($(( $(now_s) - _wf_start )) s)"
      return 0
    fi
    _wf_now=$(now_s)
    if [ $((_wf_now - _wf_start)) -ge "$_wf_timeout" ]; then
      log "gave up waiting for $_wf_what after $_wf_timeout s"
      return 1
    fi
    if [ "$_wf_now" -ge "$_wf_next_report" ]; then
      log "still waiting for $_wf_what ($((_wf_now - _wf_start)) s of $_wf_timeout s)"
      _wf_next_report=$((_wf_now + 30))
    fi
    sleep 2
  done
}

# retry N CMD [ARGS...]: for network steps (downloads, apt) that fail transiently.
retry() {
  _r_n=$1
  shift
  _r_i=1
  while :; do
    "$@" && return 0
    [ "$_r_i" -ge "$_r_n" ] && return 1
    log "attempt $_r_i of $_r_n failed: $*; retrying in $((_r_i * 5)) s"
    sleep $((_r_i * 5))
    _r_i=$((_r_i + 1))
  done
}

# JSON string literal of $1 (or null when empty and $2 = nullable).
json_str() {
  if [ -z "$1" ] && [ "${2:-}" = nullable ]; then
    printf 'null'
    return
  fi
  printf '"%s"' "$(printf '%s' "$1" | tr -d '\000-\010\013\014\016-\037' | tr '\n\r\t' '   ' \
    | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')"
}

# JSON number or null.
json_num() {
  case "$1" in
    '' | *[!0-9.-]*) printf 'null' ;;
    *) printf '%s' "$1" ;;
  esac
}

# JSON array of the lines of file $1.
json_lines() {
  _jl_first=1
  printf '['
  if [ -s "$1" ]; then
    while IFS= read -r _jl_line; do
      [ "$_jl_first" = 1 ] || printf ','
      json_str "$_jl_line"
      _jl_first=0
    done < "$1"
  fi
  printf ']'
}

# Read key from a key=value state file; empty when absent.
state_get() {
  [ -r "$1" ] || return 0
  sed -n "s/^$2=//p" "$1" | tail -n 1
}

state_set() {
  _ss_tmp="$1.tmp.$$"
  {
    if [ -r "$1" ]; then grep -v "^$2=" "$1" || :; fi
    printf '%s=%s\n' "$2" "$3"
  } > "$_ss_tmp"
  mv "$_ss_tmp" "$1"
}

oom_counter() { awk '$1 == "oom_kill" { print $2; found = 1 } END { if (!found) print "" }' /proc/vmstat; }

# Kernel log lines about the OOM killer since epoch second $1: one per kill, system-wide
# ("Out of memory: Killed process") or in a cgroup over its limit, such as a pod
# ("Memory cgroup out of memory: Killed process"); kernels before 5.x said "Kill process".
OOM_KILL_LINE='out of memory: kill(ed)? process'
oom_log_count() {
  if command -v journalctl >/dev/null 2>&1; then
    timeout 30 journalctl -k -q --no-pager --since "@$1" 2>/dev/null | grep -ciE "$OOM_KILL_LINE" || :
  else
    dmesg 2>/dev/null | grep -ciE "$OOM_KILL_LINE" || :
  fi
}

# apt-get that waits for the dpkg lock instead of failing (cloud-init or a killed run may hold it).
apt_get() {
  DEBIAN_FRONTEND=noninteractive timeout 1800 apt-get -q -y -o DPkg::Lock::Timeout=600 "$@"
}

# Finish an interrupted dpkg run (an SSH drop mid-install), so a re-run can proceed.
dpkg_recover() {
  DEBIAN_FRONTEND=noninteractive timeout 900 dpkg --configure -a >&2 || :
}

# Wait until systemd has finished booting: cloud-init's stages are boot jobs, so this waits for
# them too. Not `cloud-init status --wait`: that is a Python process, and the free pages it left on
# the kernel's per-CPU lists read as 25 to 45 MiB of "used" in the OS baseline right after it
# (1 GiB guest, 1 vCPU; MemAvailable does not count those pages).
wait_boot_finished() { # SECONDS
  log "waiting for the boot to finish, cloud-init included (at most $1 s)"
  _wb_rc=0
  _wb_state=$(timeout "$1" systemctl is-system-running --wait 2>/dev/null) || _wb_rc=$?
  case "$_wb_rc:$_wb_state" in
    0:*) ;;
    124:*) log "the boot had not finished after $1 s; going on" ;;
    *:degraded) log "the boot finished with a failed unit (systemctl --failed lists it); going on" ;;
    *) log "systemd reports the system '${_wb_state:-unknown}' (exit $_wb_rc); going on" ;;
  esac
}

# Quiet the machine for the run: no swap, no background upgrades or snap refreshes.
quiet_machine() {
  swapoff -a 2>/dev/null || :
  systemctl stop unattended-upgrades.service apt-daily.timer apt-daily-upgrade.timer \
    apt-daily.service apt-daily-upgrade.service >/dev/null 2>&1 || :
  if command -v snap >/dev/null 2>&1; then
    timeout 60 snap refresh --hold >/dev/null 2>&1 || :
  fi
}

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
  _wf_stop=""
  _wait_loop "$@"
}

# wait_for_unless STOP TIMEOUT_S WHAT CMD [ARGS...]: wait_for, but after each failed try it runs
# STOP (a function, bounded like CMD); when STOP succeeds, what it printed goes to WAIT_STOPPED and
# the wait ends at once with 2: what it waited for will not come (a container that exited).
wait_for_unless() {
  _wf_stop=$1
  shift
  _wait_loop "$@"
}

_wait_loop() {
  _wf_timeout=$1 _wf_what=$2
  shift 2
  WAIT_STOPPED=""
  _wf_start=$(now_s)
  _wf_next_report=$((_wf_start + 30))
  while :; do
    if "$@" >/dev/null 2>&1; then
      log "ready: $_wf_what ($(( $(now_s) - _wf_start )) s)"
      return 0
    fi
    if [ -n "$_wf_stop" ] && WAIT_STOPPED=$("$_wf_stop" 2>/dev/null); then
      log "stopped waiting for $_wf_what after $(( $(now_s) - _wf_start )) s: $WAIT_STOPPED"
      return 2
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

oom_counter() { awk '$1 == "oom_kill" { print $2; found = 1 } END { if (!found) print "" }' "${K8SF_VMSTAT:-/proc/vmstat}"; }
boot_id() { cat "${K8SF_BOOT_ID:-/proc/sys/kernel/random/boot_id}" 2>/dev/null || :; }

# OOM kills per phase, from the kernel's own counter (/proc/vmstat oom_kill, since 4.13). The
# counter starts at 0 at every boot, so a mark keeps the boot id beside the count: a phase that
# spans a reboot counts from the boot, never below zero. Each phase's end is the next one's mark
# (bootstrap -> idle -> workload -> the next run's idle), so no kill is lost between commands or
# counted twice.
oom_mark() { # NAME: the start of a phase
  printf '%s %s %s\n' "$(boot_id)" "$(oom_counter)" "$(now_s)" > "$STATE_DIR/oom-$1.mark"
}
oom_since() { # NAME: kills since the mark, or nothing when there is no counter or no mark
  _os_now=$(oom_counter)
  [ -n "$_os_now" ] && [ -r "$STATE_DIR/oom-$1.mark" ] || return 0
  read -r _os_boot _os_start _ < "$STATE_DIR/oom-$1.mark" || return 0
  if [ "$_os_boot" != "$(boot_id)" ] || [ -z "$_os_start" ] || [ "$_os_now" -lt "$_os_start" ]; then
    log "the machine rebooted since the $1 phase began: counting its OOM kills from the boot"
    echo "$_os_now"
  else
    echo $((_os_now - _os_start))
  fi
}
oom_mark_time() { read -r _ _ _omt < "$STATE_DIR/oom-$1.mark" 2>/dev/null && echo "${_omt:-0}" || echo 0; }

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

# oom_log_events SINCE: an event line (unix ms, oom_kill, "PID (COMM)") per OOM kill in the kernel
# log since epoch second SINCE (lib/oom.awk); dmesg's seconds since boot are put on the wall clock.
oom_log_events() {
  if command -v journalctl >/dev/null 2>&1; then
    timeout 30 journalctl -k -q --no-pager -o short-unix --since "@${1:-0}" 2>/dev/null |
      awk -v since_s="${1:-0}" -f "$KIT_DIR/lib/oom.awk" || :
  else
    read -r _ole_up _ < /proc/uptime
    dmesg 2>/dev/null | awk -v boot_s="$(( $(now_s) - ${_ole_up%.*} ))" -v since_s="${1:-0}" -f "$KIT_DIR/lib/oom.awk" || :
  fi
}

# ---- bounded steps: one session each, killed as a whole ------------------------------------------
# `timeout` kills only its own child's process group, so a nested timeout (which makes a group of
# its own) or a daemonising child survives it, holding the kit's lock (fd 9). A bounded step runs
# in a session of its own (setsid), with fd 9 closed; when its time is up, every process of that
# session gets TERM and, after a grace period, KILL. Nested timeouts inside it stay in its session.
K8SF_KILL_GRACE=${K8SF_KILL_GRACE:-10}
SESSIONS_FILE=${SESSIONS_FILE:-$STATE_DIR/sessions}

# kill_session SID SIGNAL: every process whose session is SID (/proc/PID/stat field 6), with builtins.
kill_session() {
  _ks_sid=$1 _ks_sig=$2
  # The leader itself first, by pid: a step or watchdog that was only just started may not have
  # called setsid yet, and then no process has that session yet (a fast step's watchdog was left
  # sleeping so). Killed before its setsid, it makes no session; after, the loop finds the rest.
  kill "-$_ks_sig" "$_ks_sid" 2> /dev/null || :
  for _ks_stat in /proc/[0-9]*/stat; do
    read -r _ks_line 2> /dev/null < "$_ks_stat" || continue
    # After the command name (which may hold spaces and parentheses): state ppid pgrp session ...
    _ks_rest=${_ks_line##*) }
    # shellcheck disable=SC2086  # split into fields on purpose
    set -- $_ks_rest
    [ "${4:-}" = "$_ks_sid" ] || continue
    _ks_pid=${_ks_stat#/proc/}
    kill "-$_ks_sig" "${_ks_pid%/stat}" 2> /dev/null || :
  done
}

# session_alive SID: does a live process (not a zombie) of session SID remain?
session_alive() {
  _sa_sid=$1
  for _sa_stat in /proc/[0-9]*/stat; do
    read -r _sa_line 2> /dev/null < "$_sa_stat" || continue
    _sa_rest=${_sa_line##*) }
    # shellcheck disable=SC2086  # split into fields on purpose
    set -- $_sa_rest
    if [ "${4:-}" = "$_sa_sid" ] && [ "$1" != Z ]; then return 0; fi
  done
  return 1
}

# end_session SID: TERM, then KILL after the grace period for what ignored it.
end_session() {
  _es_sid=$1
  kill_session "$_es_sid" TERM
  _es_i=0
  while [ "$_es_i" -lt "$K8SF_KILL_GRACE" ] && session_alive "$_es_sid"; do
    sleep 1
    _es_i=$((_es_i + 1))
  done
  kill_session "$_es_sid" KILL
}

# bounded SECONDS [--stdin FILE] CMD [ARGS...]: CMD in its own session, ended as a whole after
# SECONDS; returns CMD's status, or 124 (as timeout does) when the time ran out. Inside a bounded
# step (K8SF_SESSION set) it is plain timeout: the outer session's end takes those too.
bounded() {
  _bd_t=$1
  shift
  _bd_in=/dev/null
  if [ "$1" = --stdin ]; then _bd_in=$2; shift 2; fi
  if [ -n "${K8SF_SESSION:-}" ]; then
    timeout -k "$K8SF_KILL_GRACE" "$_bd_t" "$@" < "$_bd_in"
    return
  fi
  K8SF_SESSION=1 setsid "$@" < "$_bd_in" 9>&- &
  _bd_pid=$!
  echo "$_bd_pid" >> "$SESSIONS_FILE"
  rm -f "$STATE_DIR/timedout.$_bd_pid"
  # The watchdog: a session of its own too, so that ending it takes its sleep.
  # shellcheck disable=SC2016  # expanded by the watchdog's shell
  K8SF_KILL_GRACE=$K8SF_KILL_GRACE setsid sh -c '. "$1"; sleep "$2"; : > "$4"; end_session "$3"' \
    k8sf-watchdog "$KIT_DIR/lib/common.sh" "$_bd_t" "$_bd_pid" "$STATE_DIR/timedout.$_bd_pid" \
    < /dev/null > /dev/null 2>&1 9>&- &
  _bd_dog=$!
  echo "$_bd_dog" >> "$SESSIONS_FILE"
  _bd_rc=0
  wait "$_bd_pid" || _bd_rc=$?
  kill_session "$_bd_dog" KILL
  # What the step left behind in its session (a daemonised grandchild) goes with it.
  kill_session "$_bd_pid" KILL
  if [ -e "$STATE_DIR/timedout.$_bd_pid" ]; then
    rm -f "$STATE_DIR/timedout.$_bd_pid"
    _bd_rc=124
  fi
  sed -i -e "/^$_bd_pid\$/d" -e "/^$_bd_dog\$/d" "$SESSIONS_FILE" 2> /dev/null || :
  return "$_bd_rc"
}

# end_all_sessions: on a signal to the kit (the cell's outer timeout), end every bounded step.
end_all_sessions() {
  [ -s "$SESSIONS_FILE" ] || return 0
  _ea_sids=$(cat "$SESSIONS_FILE")
  for _ea_sid in $_ea_sids; do kill_session "$_ea_sid" TERM; done
  _ea_i=0
  while [ "$_ea_i" -lt "$K8SF_KILL_GRACE" ]; do
    _ea_left=0
    for _ea_sid in $_ea_sids; do
      if session_alive "$_ea_sid"; then _ea_left=1; break; fi
    done
    [ "$_ea_left" = 1 ] || break
    sleep 1
    _ea_i=$((_ea_i + 1))
  done
  for _ea_sid in $_ea_sids; do kill_session "$_ea_sid" KILL; done
  : > "$SESSIONS_FILE"
}

# nap SECONDS: a sleep that a signal to the kit interrupts (a foreground sleep holds off the trap).
NAP_PID=""
nap() {
  sleep "$1" 9>&- &
  NAP_PID=$!
  wait "$NAP_PID" || :
  NAP_PID=""
}

# Whole numbers as the user typed them may carry leading zeros, which dash arithmetic reads as
# octal (08 is an error): strip them.
decimal() {
  _dc=$1
  while :; do
    case "$_dc" in 0[0-9]*) _dc=${_dc#0} ;; *) break ;; esac
  done
  printf '%s' "$_dc"
}

# The workload's readiness check, run inside its container, where the password lives: the client
# reads it from an option file (MYSQL_PWD is deprecated since MySQL 8.0: "Use of the MYSQL_PWD
# environment variable is deprecated"). SELECT 1 fails on "Access denied", unlike mysqladmin ping.
# shellcheck disable=SC2016  # expanded inside the container
MYSQL_CHECK='umask 077; printf "[client]\nuser=root\npassword=%s\n" "$MYSQL_ROOT_PASSWORD" > /tmp/k8sf-my.cnf'
MYSQL_CHECK="$MYSQL_CHECK"' && mysql --defaults-extra-file=/tmp/k8sf-my.cnf -h127.0.0.1 -e "SELECT 1"'

# apt-get that waits for the dpkg lock instead of failing (cloud-init or a killed run may hold it).
apt_get() {
  DEBIAN_FRONTEND=noninteractive timeout 1800 apt-get -q -y -o DPkg::Lock::Timeout=600 "$@"
}

# need_curl: the k3s and k0s installers and the API probe need curl, and a fresh image may have
# empty package lists (apt-get install then fails with "Unable to locate package"), so update
# first. ca-certificates too: without it curl cannot check any HTTPS download.
need_curl() {
  command -v curl >/dev/null 2>&1 && [ -e "${K8SF_FS_ROOT:-}/etc/ssl/certs/ca-certificates.crt" ] && return 0
  dpkg_recover
  retry 3 apt_get update >&2 || return 1
  retry 3 apt_get install --no-install-recommends curl ca-certificates >&2
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

# What the guest itself says about the machine it runs on, for the result's provenance.guest.
# `systemd-detect-virt --vm` prints kvm for qemu with KVM, qemu for qemu without it (TCG), amazon on
# AWS Nitro, none on bare metal, and exits 1 with "none" (systemd src/basic/virt.c: the CPUID table
# has "KVMKVMKVM" -> kvm and "TCGTCGTCGTCG" -> qemu; without CPUID, on aarch64, the DMI table is read
# from product_name first, which QEMU's virt machine sets to "KVM Virtual Machine" under KVM and
# "QEMU Virtual Machine" under TCG, hw/arm/virt.c:virt_build_smbios; booted without firmware
# tables, an aarch64 guest has only the device tree, and says qemu under KVM too). --vm leaves
# containers out.
# Without systemd-detect-virt the accel is unknown: the kit does not guess.
guest_json() {
  _gj_virt=$(timeout 10 systemd-detect-virt --vm 2>/dev/null) || :
  case "$_gj_virt" in
    kvm) _gj_accel=kvm ;;
    qemu) _gj_accel=tcg ;;
    none) _gj_accel=none ;;
    '') _gj_accel=unknown ;;
    *) _gj_accel=hypervisor ;;
  esac
  printf '{"virt":%s,"accel":"%s","vcpus":%s}' "$(json_str "$_gj_virt" nullable)" "$_gj_accel" \
    "$(json_num "$(nproc 2>/dev/null || :)")"
}

# Quiet the machine for the run: no swap, no background upgrades or snap refreshes.
quiet_machine() {
  swapoff -a 2>/dev/null || :
  timeout 60 systemctl stop unattended-upgrades.service apt-daily.timer apt-daily-upgrade.timer \
    apt-daily.service apt-daily-upgrade.service >/dev/null 2>&1 || :
  if command -v snap >/dev/null 2>&1; then
    timeout 60 snap refresh --hold >/dev/null 2>&1 || :
  fi
}

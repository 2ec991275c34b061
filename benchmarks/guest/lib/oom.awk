# One event line (unix ms, oom_kill, the process killed) per OOM kill in a kernel log, as
# `journalctl -k -o short-unix` prints it (the first field is unix seconds with microseconds) or,
# with boot_s set, as `dmesg` prints it ("[seconds since boot] message"). The kernel logs a kill
# as "Out of memory: Killed process PID (COMM)" system-wide and as "Memory cgroup out of memory:
# Killed process PID (COMM)" in a cgroup over its limit (mm/oom_kill.c, __oom_kill_process);
# kernels before 4.19 said "Kill process". Lines before since_s (unix seconds) are left out.
# Usage: awk [-v boot_s=S] -v since_s=S -f oom.awk
tolower($0) ~ /out of memory: kill(ed)? process/ {
  if (boot_s != "") {
    if (!match($0, /^\[ *[0-9]+\.[0-9]+\]/)) next
    stamp = substr($0, RSTART + 1, RLENGTH - 2); sub(/^ +/, "", stamp); at = boot_s + stamp
  } else at = $1 + 0
  if (at < since_s) next
  if (!match($0, /[Kk]ill(ed)? process [0-9]+ \([^)]*\)/)) next
  what = substr($0, RSTART, RLENGTH)
  sub(/^[Kk]ill(ed)? process /, "", what)
  printf "%.0f\toom_kill\t%s%s\n", at * 1000, what, (tolower($0) ~ /memory cgroup out of memory/ ? " in a memory cgroup" : "")
}

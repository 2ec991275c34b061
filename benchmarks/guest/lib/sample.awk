# Turns /proc/meminfo, cgroup memory files (each group announced by a cg=NAME operand) and the
# concatenated /proc/PID/status files on stdin into one sample, as JSON or as TSV lines.
# Memory in the kernel's files is in KiB; results are in MiB.

function mib(kib) { return sprintf("%.1f", kib / 1024) }
function jstr(s) { gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); return "\"" s "\"" }

FILENAME == "/proc/meminfo" { mem[$1] = $2; next }
FILENAME ~ /memory\.current$/ { cur[cg] += $1 / 1024; seen[cg] = 1; next }
FILENAME ~ /memory\.stat$/ { if ($1 == "inactive_file") inactive[cg] += $2 / 1024; next }
$1 == "Name:" { comm = substr($0, index($0, $2)); next }
$1 == "VmRSS:" { rss[comm] += $2; next }

END {
  total = mem["MemTotal:"]; avail = mem["MemAvailable:"]; free = mem["MemFree:"]
  used = total - avail
  legacy = total - free - mem["Buffers:"] - mem["Cached:"] - mem["SReclaimable:"]

  # The ten largest processes, by RSS summed over processes of the same name.
  ntop = 0
  for (i = 1; i <= 10; i++) {
    best = ""; bestv = -1
    for (c in rss) if (!(c in taken) && rss[c] > bestv) { best = c; bestv = rss[c] }
    if (best == "") break
    taken[best] = 1; ntop++; topname[ntop] = best; topval[ntop] = bestv
  }

  if (fmt == "tsv") {
    printf "mem\t%d\t%d\t%d\t%d\t%d\n", total, used, avail, legacy, free
    for (g in seen) printf "cg\t%s\t%d\n", g, (cur[g] - inactive[g]) * 1024
    for (i = 1; i <= ntop; i++) printf "proc\t%s\t%d\n", topname[i], topval[i]
    exit
  }
  printf "{\"schema\":\"k8s-footprint/sample/v1\",\"ts_ms\":%s", ts
  printf ",\"mem_total_mib\":%s,\"used_mib\":%s,\"available_mib\":%s", mib(total), mib(used), mib(avail)
  printf ",\"used_legacy_mib\":%s,\"free_mib\":%s,\"cgroups_mib\":{", mib(legacy), mib(free)
  sep = ""
  for (g in seen) { printf "%s%s:%s", sep, jstr(g), mib((cur[g] - inactive[g]) * 1024); sep = "," }
  printf "},\"top_processes\":["
  for (i = 1; i <= ntop; i++) {
    printf "%s{\"comm\":%s,\"rss_mib\":%s}", (i > 1 ? "," : ""), jstr(topname[i]), mib(topval[i])
  }
  printf "]}\n"
}

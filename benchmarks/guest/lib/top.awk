# The ten largest processes by RSS (summed over processes of the same name), from the
# concatenated /proc/PID/status files on stdin, as "proc<TAB>name<TAB>KiB" lines.
$1 == "Name:" { comm = substr($0, index($0, $2)); next }
$1 == "VmRSS:" { rss[comm] += $2; next }
END {
  for (i = 1; i <= 10; i++) {
    best = ""; bestv = -1
    for (c in rss) if (!(c in taken) && rss[c] > bestv) { best = c; bestv = rss[c] }
    if (best == "") break
    taken[best] = 1
    printf "proc\t%s\t%d\n", best, bestv
  }
}

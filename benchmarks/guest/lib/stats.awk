# Summarises the TSV samples of one phase (as sample.sh --tsv prints them, each sample opened by a
# "sample" line, the phase by a "clock" line: unix ms and /proc/uptime at its start) into the phase
# object of the result JSON.
#   median: the middle value, or the mean of the two middle values;
#   p95: nearest rank, the value at position ceil(0.95 n) of the sorted samples.
# Cgroups are reported as the median of their working set, anon and file; processes as in the last
# sample. pcp_free_mib (free pages on the per-CPU lists) appears when the samples carry it (kit 0.1.3
# on); psi_some_avg10, anon/file and the series when they carry those (kit 0.3.0 on).
# The series: one column per quantity, at most maxpoints (240) points, thinned evenly (the first
# and the last kept, evenly spaced indices between), so the kit's output stays bounded however
# many samples a phase takes. t_s counts from t0_ms (unix ms: the install's start), on the clock
# of the phase's "clock" line plus the uptime each sample read. api_ms (probing=1) holds each
# sample's probe latency, null where the probe failed.
# Usage: awk -v interval=S [-v t0_ms=MS] [-v probing=1] [-v maxpoints=N] -f stats.awk PHASE.tsv

function sort(a, n,    i, j, v) {
  for (i = 2; i <= n; i++) { v = a[i]; for (j = i - 1; j >= 1 && a[j] > v; j--) a[j + 1] = a[j]; a[j + 1] = v }
}
function median(a, n) { sort(a, n); return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
function p95(a, n,    k) { sort(a, n); k = int(0.95 * n); if (k < 0.95 * n) k++; return a[k] }
function mib(kib) { return sprintf("%.1f", kib / 1024) }
function summary(a, n) {
  sort(a, n)
  return sprintf("{\"median\":%s,\"p95\":%s,\"min\":%s,\"max\":%s}", mib(median(a, n)), mib(p95(a, n)), mib(a[1]), mib(a[n]))
}
function jstr(s) { gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); return "\"" s "\"" }
# pick(n, m): the indices of m points out of 1..n, evenly spaced, first and last kept, into idx[].
function pick(n, m,    k) {
  if (m >= n) { for (k = 1; k <= n; k++) idx[k] = k; return n }
  if (m < 2) { idx[1] = n; return 1 }
  for (k = 0; k < m; k++) idx[k + 1] = 1 + int(k * (n - 1) / (m - 1) + 0.5)
  return m
}
# column(a, fmt): the picked points of a as a JSON array; an empty entry is null.
function column(a, fmt,    k, out) {
  out = ""
  for (k = 1; k <= npick; k++) out = out (k > 1 ? "," : "") (a[idx[k]] == "" ? "null" : sprintf(fmt, a[idx[k]]))
  return "[" out "]"
}
function medians(name, col,    g, m, i, sep, tmp, any) {
  printf ",\"%s\":{", name
  sep = ""
  for (g in cgn) {
    m = 0; delete tmp
    for (i = 1; i <= cgn[g]; i++) if ((g, i, col) in cgv) tmp[++m] = cgv[g, i, col]
    if (m == 0) continue
    printf "%s%s:%s", sep, jstr(g), mib(median(tmp, m)); sep = ","
  }
  printf "}"
}

BEGIN { FS = "\t"; n = 0; if (maxpoints == "") maxpoints = 240; clock_ms = ""; timed = 1 }
$1 == "clock" { clock_ms = $2; clock_up = $3; next }
$1 == "sample" { nproc = 0; next }
$1 == "mem" {
  n++; used[n] = $3; avail[n] = $4; legacy[n] = $5
  if (NF >= 7) { npcp++; pcp[npcp] = $7; s_pcp[n] = $7 / 1024 }
  if (NF >= 11) {
    if ($8 != "-" && $8 != "") { npsi++; psi[npsi] = $8 + 0; s_psi[n] = $8 + 0 } else s_psi[n] = ""
    s_anon[n] = $9 / 1024; s_file[n] = $10 / 1024
    if ($11 == "-" || clock_ms == "") timed = 0; else s_t[n] = (clock_ms - t0_ms) / 1000 + ($11 - clock_up)
  } else timed = 0
  s_used[n] = $3 / 1024; s_avail[n] = $4 / 1024; s_api[n] = ""
  next
}
$1 == "cg" {
  k = ++cgn[$2]; cgv[$2, k, 3] = $3
  if (NF >= 5) { cgv[$2, k, 4] = $4; cgv[$2, k, 5] = $5 }
  next
}
$1 == "proc" { nproc++; pname[nproc] = $2; pval[nproc] = $3; next }
$1 == "probe" { if (n > 0) s_api[n] = ($2 == 1 ? $3 + 0 : ""); next }

END {
  if (n == 0) {
    printf "{\"samples\":0,\"interval_s\":%s,\"used_mib\":null,\"available_mib\":null,", interval
    printf "\"used_legacy_mib\":null,\"cgroups_mib\":{},\"top_processes\":[]}"
    exit
  }
  printf "{\"samples\":%d,\"interval_s\":%s", n, interval
  printf ",\"used_mib\":%s,\"available_mib\":%s", summary(used, n), summary(avail, n)
  printf ",\"used_legacy_mib\":{\"median\":%s}", mib(median(legacy, n))
  # median() sorts in place, so pcp[npcp] is then the largest.
  if (npcp > 0) { m = median(pcp, npcp); printf ",\"pcp_free_mib\":{\"median\":%s,\"max\":%s}", mib(m), mib(pcp[npcp]) }
  if (timed) {
    if (npsi > 0) { m = median(psi, npsi); printf ",\"psi_some_avg10\":{\"median\":%.2f,\"max\":%.2f}", m, psi[npsi] }
    else printf ",\"psi_some_avg10\":null"
  }
  printf ",\"cgroups_mib\":{"
  sep = ""
  for (g in cgn) {
    m = cgn[g]; delete tmp
    for (i = 1; i <= m; i++) tmp[i] = cgv[g, i, 3]
    printf "%s%s:%s", sep, jstr(g), mib(median(tmp, m)); sep = ","
  }
  printf "}"
  if (timed) { medians("cgroups_anon_mib", 4); medians("cgroups_file_mib", 5) }
  printf ",\"top_processes\":["
  for (i = 1; i <= nproc; i++) printf "%s{\"comm\":%s,\"rss_mib\":%s}", (i > 1 ? "," : ""), jstr(pname[i]), mib(pval[i])
  printf "]"
  if (timed) {
    npick = pick(n, maxpoints)
    printf ",\"series\":{\"t_s\":%s,\"used_mib\":%s,\"available_mib\":%s", column(s_t, "%.1f"), column(s_used, "%.1f"), column(s_avail, "%.1f")
    printf ",\"pcp_free_mib\":%s,\"psi_some_avg10\":%s", column(s_pcp, "%.1f"), column(s_psi, "%.1f")
    printf ",\"anon_mib\":%s,\"file_mib\":%s", column(s_anon, "%.1f"), column(s_file, "%.1f")
    if (probing) printf ",\"api_ms\":%s", column(s_api, "%.1f")
    printf "}"
  }
  printf "}"
}

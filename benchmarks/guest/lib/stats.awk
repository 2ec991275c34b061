# Summarises the TSV samples of one phase (as sample.sh --tsv prints them, each sample opened by a
# "sample" line) into the phase object of the result JSON.
#   median: the middle value, or the mean of the two middle values;
#   p95: nearest rank, the value at position ceil(0.95 n) of the sorted samples.
# Cgroups are reported as the median of their working set; processes as in the last sample.
# pcp_free_mib (free pages on the per-CPU lists) appears when the samples carry it (kit 0.1.3 on).

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

BEGIN { FS = "\t"; n = 0 }
$1 == "sample" { nproc = 0; next }
$1 == "mem" { n++; used[n] = $3; avail[n] = $4; legacy[n] = $5; if (NF >= 7) { npcp++; pcp[npcp] = $7 }; next }
$1 == "cg" { k = ++cgn[$2]; cgv[$2, k] = $3; next }
$1 == "proc" { nproc++; pname[nproc] = $2; pval[nproc] = $3; next }

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
  printf ",\"cgroups_mib\":{"
  sep = ""
  for (g in cgn) {
    m = cgn[g]; delete tmp
    for (i = 1; i <= m; i++) tmp[i] = cgv[g, i]
    printf "%s%s:%s", sep, jstr(g), mib(median(tmp, m)); sep = ","
  }
  printf "},\"top_processes\":["
  for (i = 1; i <= nproc; i++) printf "%s{\"comm\":%s,\"rss_mib\":%s}", (i > 1 ? "," : ""), jstr(pname[i]), mib(pval[i])
  printf "]}"
}

# The result's "api" object, from the probe lines of the phase files (probe.sh once: probe, ok,
# latency ms, start unix ms, error), given as: awk -v probe=TEXT -f api.awk phase=idle FILE phase=workload FILE.
# Per phase: probes, failures, p50/p95/max latency of the probes that answered (nearest rank, as
# stats.awk), the latency of each sample (null where it failed) and the first error. Over both
# phases, in time order: the first failure, the failed probes, and the longest outage: from the
# start of the first failed probe of a run of failures to the start of the next probe that
# answered, or to the end of the last failed probe when none answered again.

function sort(a, n,    i, j, v) {
  for (i = 2; i <= n; i++) { v = a[i]; for (j = i - 1; j >= 1 && a[j] > v; j--) a[j + 1] = a[j]; a[j + 1] = v }
}
function jstr(s) { gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); gsub(/[\001-\037]/, " ", s); return "\"" s "\"" }
function phase_json(p,    n, i, k, lat, m, per, sep) {
  if (!(p in seen)) return "null"
  n = probes[p]; m = 0; per = ""; sep = ""
  for (i = 1; i <= n; i++) {
    if (ok[p, i]) { lat[++m] = ms[p, i]; per = per sep ms[p, i] } else per = per sep "null"
    sep = ","
  }
  out = sprintf("{\"probes\":%d,\"failed\":%d,\"latency_ms\":", n, failed[p])
  if (m > 0) {
    sort(lat, m); k = int(0.95 * m); if (k < 0.95 * m) k++
    out = out sprintf("{\"p50\":%d,\"p95\":%d,\"max\":%d}", lat[int((m + 1) / 2)], lat[k], lat[m])
  } else out = out "null"
  return out sprintf(",\"per_sample_ms\":[%s],\"first_error\":%s}", per, (p in ferr) ? jstr(ferr[p]) : "null")
}

BEGIN { FS = "\t"; total_failed = 0; in_outage = 0; longest = -1; recovered = "null" }
FNR == 1 { seen[phase] = 1 }
$1 == "probe" {
  i = ++probes[phase]; ok[phase, i] = ($2 == 1); ms[phase, i] = $3 + 0
  if (!(phase in first_start)) first_start[phase] = $4
  if ($2 == 1) {
    if (in_outage) { d = $4 - outage_start; if (d > longest) longest = d; in_outage = 0; recovered = "true" }
  } else {
    failed[phase]++; total_failed++
    if (!(phase in ferr)) ferr[phase] = $5
    if (total_failed == 1) {
      ff = sprintf("{\"phase\":\"%s\",\"at\":%d,\"offset_s\":%.1f}", phase, int($4 / 1000), ($4 - first_start[phase]) / 1000)
    }
    if (!in_outage) { in_outage = 1; outage_start = $4 }
    fail_end = $4 + $3
    recovered = "false"
  }
}
END {
  if (in_outage) { d = fail_end - outage_start; if (d > longest) longest = d }
  printf "{\"probe\":%s,\"idle\":%s,\"workload\":%s,\"failed_probes\":%d,\"first_failure\":%s,", jstr(probe),
    phase_json("idle"), phase_json("workload"), total_failed, (total_failed ? ff : "null")
  printf "\"longest_outage_s\":%s,\"recovered\":%s}", (longest < 0 ? "null" : sprintf("%.1f", longest / 1000)), recovered
}

# The result's "events" array, from the kinds file (benchmarks/guest/events) and then TSV lines
# sorted by time: unix ms, kind, detail. t_s counts from t0_ms (the install's start), as the
# phases' series do. A kind not in the file is a kit bug: the message goes to stderr, exit 3.
# At most maxkills (100) oom_kill events, the first ones: a kill loop would otherwise make the
# result unbounded; the last one kept says how many more there were (oom_kills counts them all).
# Usage: sort -s -n -k1,1 EVENTS.tsv | awk -v t0_ms=MS [-v maxkills=N] -f events.awk KINDS -
function jstr(s) { gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); gsub(/[\001-\037]/, " ", s); return "\"" s "\"" }
BEGIN { FS = "\t"; n = 0; if (maxkills == "") maxkills = 100 }
FNR == NR { if ($0 != "" && $0 !~ /^#/) kinds[$0] = 1; next }
$0 == "" { next }
{
  if (!($2 in kinds)) { printf "events.awk: kit bug: '%s' is not an event kind in the kinds file\n", $2 > "/dev/stderr"; bad = 1; exit 3 }
  if ($2 == "oom_kill" && ++kills > maxkills) next
  n++; at[n] = $1; kind[n] = $2; detail[n] = substr($3, 1, 300)
  if ($2 == "oom_kill" && kills == maxkills) lastkill = n
}
END {
  if (bad) exit 3
  if (kills > maxkills) detail[lastkill] = detail[lastkill] sprintf(" (and %d more kills, not listed)", kills - maxkills)
  for (i = 1; i <= n; i++)
    printf "%s{\"t_s\":%.1f,\"kind\":\"%s\",\"detail\":%s}", (i > 1 ? "," : "["), (at[i] - t0_ms) / 1000, kind[i], jstr(detail[i])
  printf "%s", (n ? "]" : "[]")
}

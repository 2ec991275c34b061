# The result's "events" array, from the kinds file (benchmarks/guest/events) and then TSV lines
# sorted by time: unix ms, kind, detail. t_s counts from t0_ms (the install's start), as the
# phases' series do. A kind not in the file is a kit bug: the message goes to stderr, exit 3.
# Usage: sort -s -n -k1,1 EVENTS.tsv | awk -v t0_ms=MS -f events.awk KINDS -
function jstr(s) { gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); gsub(/[\001-\037]/, " ", s); return "\"" s "\"" }
BEGIN { FS = "\t"; out = "" }
FNR == NR { if ($0 != "" && $0 !~ /^#/) kinds[$0] = 1; next }
$0 == "" { next }
{
  if (!($2 in kinds)) { printf "events.awk: kit bug: '%s' is not an event kind in the kinds file\n", $2 > "/dev/stderr"; bad = 1; exit 3 }
  out = out (out == "" ? "" : ",") sprintf("{\"t_s\":%.1f,\"kind\":\"%s\",\"detail\":%s}", ($1 - t0_ms) / 1000, $2, jstr(substr($3, 1, 300)))
}
END { if (!bad) printf "[%s]", out }

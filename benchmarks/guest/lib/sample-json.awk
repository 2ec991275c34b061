# Formats one sample's TSV lines (mem, cg, proc; KiB) as the JSON that `k8sf sample` prints (MiB).
function mib(kib) { return sprintf("%.1f", kib / 1024) }
function jstr(s) { gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); return "\"" s "\"" }
BEGIN { FS = "\t" }
$1 == "mem" { total = $2; used = $3; avail = $4; legacy = $5; free = $6; pcp = $7; psi = $8; anon = $9; file = $10; next }
$1 == "cg" {
  cgs = cgs (cgs == "" ? "" : ",") jstr($2) ":" mib($3)
  cga = cga (cga == "" ? "" : ",") jstr($2) ":" mib($4)
  cgf = cgf (cgf == "" ? "" : ",") jstr($2) ":" mib($5)
  next
}
$1 == "proc" { procs = procs (procs == "" ? "" : ",") "{\"comm\":" jstr($2) ",\"rss_mib\":" mib($3) "}"; next }
END {
  printf "{\"schema\":\"k8s-footprint/sample/v1\",\"ts_ms\":%s", ts
  printf ",\"mem_total_mib\":%s,\"used_mib\":%s,\"available_mib\":%s", mib(total), mib(used), mib(avail)
  printf ",\"used_legacy_mib\":%s,\"free_mib\":%s,\"pcp_free_mib\":%s", mib(legacy), mib(free), mib(pcp)
  printf ",\"psi_some_avg10\":%s,\"anon_mib\":%s,\"file_mib\":%s", (psi == "-" || psi == "" ? "null" : sprintf("%.2f", psi)), mib(anon), mib(file)
  printf ",\"cgroups_mib\":{%s},\"cgroups_anon_mib\":{%s},\"cgroups_file_mib\":{%s},\"top_processes\":[%s]}\n", cgs, cga, cgf, procs
}

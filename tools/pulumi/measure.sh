#!/usr/bin/env bash
# Measure a cold and a warm `make pulumi-tools`: wall time and disk use, into a JSON file.
#
#   bash tools/pulumi/measure.sh OUT.json [SCRATCH]
#
# Cold: empty GOMODCACHE, GOCACHE and XDG_CACHE_HOME under SCRATCH (default: a new temp folder), so
# every module is downloaded and every package compiled. Warm: the same command again at once.
# SCRATCH is left in place (the disk use is measured there); remove it when done.
set -euo pipefail

out=${1:?usage: measure.sh OUT.json [SCRATCH]}
scratch=${2:-$(mktemp -d /var/tmp/k8sf-pulumi-tools-measure.XXXXXX)}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
mkdir -p "$scratch"
[[ -z $(ls -A "$scratch") ]] || { echo "error: $scratch is not empty: a cold build needs empty caches" >&2; exit 1; }

export GOMODCACHE=$scratch/gomodcache GOCACHE=$scratch/gocache XDG_CACHE_HOME=$scratch/xdg
log() { printf '[measure %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

run() {  # run NAME: time one make pulumi-tools, log to SCRATCH/NAME.log; prints seconds and exit code
  local name=$1 t0 rc=0
  t0=$(date +%s%N)
  make -C "$repo" --no-print-directory pulumi-tools >"$scratch/$name.log" 2>&1 || rc=$?
  printf '%s %s\n' "$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')" "$rc"
}
mib() { du -sm "$1" 2>/dev/null | cut -f1 || echo 0; }

log "cold build into $scratch (log: $scratch/cold.log)"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
read -r cold_s cold_rc < <(run cold)
cold_mod=$(mib "$GOMODCACHE") cold_build=$(mib "$GOCACHE") cold_tools=$(mib "$XDG_CACHE_HOME")
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
log "cold: ${cold_s} s, exit ${cold_rc}; warm run"
read -r warm_s warm_rc < <(run warm)
bin=$(tail -n 2 "$scratch/warm.log" | head -n 1)
bins=$(du -sm "$bin" | cut -f1)

name=$out
cat >"$out" <<EOF
{
  "what": "make pulumi-tools (tools/pulumi/build.sh): Pulumi CLI, Python language host, pulumi-resource-command",
  "command": "bash tools/pulumi/measure.sh $name  # GOMODCACHE, GOCACHE, XDG_CACHE_HOME empty under a new folder, then make pulumi-tools twice",
  "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "machine": {"nproc": $(nproc), "mem_gib": $(free -g | awk '/^Mem:/{print $2}'), "go": "$(go env GOVERSION)",
              "loadavg_1_5_15_before": "$load_before", "loadavg_1_5_15_after_cold": "$load_after"},
  "git_dir_for_unproxied_modules": "${PULUMI_TOOLS_GIT_DIR:-unset}",
  "cold": {"wall_s": $cold_s, "exit": $cold_rc, "gomodcache_mib": $cold_mod, "gocache_mib": $cold_build,
           "tools_cache_mib": $cold_tools},
  "warm": {"wall_s": $warm_s, "exit": $warm_rc},
  "bin_mib": $bins,
  "binaries": {$(cd "$bin" && for f in *; do printf '"%s": %s, ' "$f" "$(stat -c %s "$f")"; done | sed 's/, $//')}
}
EOF
log "wrote $out"
cat "$out"

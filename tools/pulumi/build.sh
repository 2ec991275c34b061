#!/usr/bin/env bash
# Build the Pulumi CLI, the Python language host and the providers this project's end-to-end tests
# need, with the ordinary `go` client, into a cache folder outside the repo:
#
#   ${XDG_CACHE_HOME:-~/.cache}/k8s-footprint/pulumi-tools/<key>/bin
#
# <key> hashes the Go version, this script and every wrapper module under tools/pulumi/, so a change
# to any of them builds afresh, and a warm run (every binary of the key present) runs no `go` at all.
# Each tool is a wrapper module of ours, tools/pulumi/<tool>/go.mod: versions live there, and
# VERSIONS.md says why each was chosen. The module is copied to <key>/work/<tool> and built there,
# so GOFLAGS=-mod=mod never rewrites the committed go.mod.
#
# Modules that the Go module proxy refuses are built from a git clone instead, at the tag and commit
# that tools/pulumi/<tool>/upstream.txt pins. Clones are looked up as $PULUMI_TOOLS_GIT_DIR/<owner>/<name>
# (a work tree or a bare repository). Without them that tool is skipped with the reason, and the
# script exits 3 after building the rest.
#
# stdout: the bin folder and the PATH line, nothing else. Progress and reasons go to stderr.
# `build.sh --where [TOOL...]` builds nothing: it prints the bin folder, and exits 0 only if every
# tool named (default: all) is there.
# GOMODCACHE and GOCACHE are Go's own (set them to measure a cold build).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GO=${GO:-go}
# Per `go` command: 2 cores build the CLI in about 12 min cold; the bound catches a hung download.
GO_TIMEOUT=${PULUMI_TOOLS_GO_TIMEOUT:-3600}
export GOFLAGS=-mod=mod CGO_ENABLED=0
# Automatic toolchain switching would fetch another Go; the wrappers name the Go this machine has.
export GOTOOLCHAIN=local

log() { printf '[pulumi-tools %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# tool | binary | main package | version variable (-X) | module whose required version is stamped |
# keep or strip the v | a file to install beside the binary, as module:path ("-": none)
TOOLS=(
  "cli|pulumi|github.com/pulumi/pulumi/pkg/v3/cmd/pulumi|github.com/pulumi/pulumi/sdk/v3/go/common/version.Version|github.com/pulumi/pulumi/pkg/v3|keep|-"
  # The host runs programs through the pulumi-language-python-exec shim, which it looks for next
  # to itself; the shim ships in the sdk/v3 module it is built against.
  "language-python|pulumi-language-python|github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3|github.com/pulumi/pulumi/sdk/v3/go/common/version.Version|github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3|keep|github.com/pulumi/pulumi/sdk/v3:python/cmd/pulumi-language-python-exec"
  "command|pulumi-resource-command|github.com/pulumi/pulumi-command/provider/cmd/pulumi-resource-command|github.com/pulumi/pulumi-command/provider/pkg/version.Version|github.com/pulumi/pulumi-command/provider|strip|-"
  "libvirt|pulumi-resource-libvirt|github.com/pulumi/pulumi-libvirt/provider/cmd/pulumi-resource-libvirt|github.com/pulumi/pulumi-libvirt/provider/pkg/version.Version|github.com/pulumi/pulumi-libvirt/provider|strip|-"
  "tls|pulumi-resource-tls|github.com/pulumi/pulumi-tls/provider/v5/cmd/pulumi-resource-tls|github.com/pulumi/pulumi-tls/provider/v5/pkg/version.Version|github.com/pulumi/pulumi-tls/provider/v5|strip|-"
)

command -v "$GO" >/dev/null || die "no go client on PATH (Go >= 1.26.6 is needed; on this project's machines: /usr/local/go/bin)"
command -v timeout >/dev/null || die "timeout(1) is missing: apt-get install coreutils"
go_version=$("$GO" env GOVERSION)

key=$({
  printf '%s\n' "$go_version"
  # Relative names only: the key must not depend on where the checkout is (a worktree elsewhere
  # would otherwise rebuild everything).
  (cd "$here" && sha256sum build.sh extract.sh)
  for t in "${TOOLS[@]}"; do
    name=${t%%|*}
    (cd "$here" && find "$name" -type f -print0 | sort -z | xargs -0 sha256sum)
  done
} | sha256sum | cut -c1-16)
root=${XDG_CACHE_HOME:-$HOME/.cache}/k8s-footprint/pulumi-tools/$key
bin=$root/bin

if [[ ${1:-} == --where ]]; then
  shift
  echo "$bin"
  for t in "${TOOLS[@]}"; do
    IFS='|' read -r name binary _ <<<"$t"
    [[ $# -eq 0 || " $* " == *" $name "* ]] || continue
    [[ -x $bin/$binary ]] || { log "not built: $bin/$binary (run make pulumi-tools)"; exit 4; }
  done
  exit 0
fi
mkdir -p "$bin" "$root/work" "$root/logs"

# Why a tool can't be built here (empty: it can): its pinned upstreams need git clones.
skip_reason() {
  local name=$1 dir repo tag commit subdir clone got
  [[ -f $here/$name/upstream.txt ]] || return 0
  if [[ -z ${PULUMI_TOOLS_GIT_DIR:-} ]]; then
    echo "the Go module proxy refuses its module here; set PULUMI_TOOLS_GIT_DIR to a folder of git clones (<owner>/<name>) holding: $(grep -v '^#' "$here/$name/upstream.txt" | awk '{printf "%s@%s ", $2, $3}')"
    return 0
  fi
  while read -r dir repo tag commit subdir; do
    [[ -z $dir || $dir == \#* ]] && continue
    clone=$PULUMI_TOOLS_GIT_DIR/$repo
    [[ -d $clone ]] || { echo "no git clone of $repo at $clone"; return 0; }
    if [[ $tag == - ]]; then
      git -C "$clone" cat-file -e "$commit^{commit}" 2>/dev/null || { echo "$clone has no commit $commit"; return 0; }
      continue
    fi
    if ! got=$(git -C "$clone" rev-parse --verify -q "$tag^{commit}"); then
      echo "$clone has no tag $tag"; return 0
    fi
    [[ $got == "$commit" ]] || die "$repo tag $tag is $got in $clone, but $name/upstream.txt pins $commit"
  done < "$here/$name/upstream.txt"
}

# Extract each pinned upstream of a tool from its git clone into the tool's work module.
extract_upstreams() {
  local name=$1 work=$2 dir repo tag commit subdir clone
  [[ -f $here/$name/upstream.txt ]] || return 0
  while read -r dir repo tag commit subdir; do
    [[ -z $dir || $dir == \#* ]] && continue
    clone=$PULUMI_TOOLS_GIT_DIR/$repo
    mkdir -p "$work/$dir"
    # The tree of that folder alone, without test data (extract.sh says why not `git archive`).
    if [[ $subdir == . ]]; then
      bash "$here/extract.sh" "$clone" "$commit" "$work/$dir" "$name: $repo"
    else
      bash "$here/extract.sh" "$clone" "$commit:$subdir" "$work/$dir" "$name: $repo"
    fi
    log "$name: $repo $tag ($commit) $subdir -> $work/$dir"
  done < "$here/$name/upstream.txt"
}

build_tool() {
  local name=$1 binary=$2 pkg=$3 var=$4 mod=$5 strip=$6 extra=$7 work version stamp started dir
  work=$root/work/$name
  rm -rf "$work"
  mkdir -p "$work"
  cp -R "$here/$name/." "$work/"
  extract_upstreams "$name" "$work"
  version=$(cd "$work" && timeout "$GO_TIMEOUT" "$GO" list -m -f '{{.Version}}' "$mod")
  stamp=$version
  [[ $strip == strip ]] && stamp=${version#v}
  # Files upstream generates before its build (not in git), made by the wrapper's own script.
  if [[ -f $work/prebuild.sh ]]; then
    log "$name: prebuild.sh $stamp"
    (cd "$work" && GO_TIMEOUT=$GO_TIMEOUT bash ./prebuild.sh "$stamp") >"$root/logs/$name.prebuild.log" 2>&1 ||
      { tail -n 30 "$root/logs/$name.prebuild.log" >&2; die "$name: prebuild.sh failed"; }
  fi
  log "$name: go build $pkg ($mod $version, -X $var=$stamp); log $root/logs/$name.log"
  started=$(date +%s)
  if ! (cd "$work" && timeout "$GO_TIMEOUT" "$GO" build -trimpath \
        -ldflags "-s -w -X $var=$stamp" -o "$bin/.$binary.tmp" "$pkg") >"$root/logs/$name.log" 2>&1; then
    tail -n 30 "$root/logs/$name.log" >&2
    die "$name: go build failed (log: $root/logs/$name.log)"
  fi
  if [[ $extra != - ]]; then
    dir=$(cd "$work" && "$GO" list -m -f '{{if .Replace}}{{.Replace.Dir}}{{else}}{{.Dir}}{{end}}' "${extra%%:*}")
    install -m 0755 "$dir/${extra#*:}" "$bin/"
    log "$name: installed ${extra%%:*}/${extra#*:} beside it"
  fi
  # The binary last: its presence is what marks the tool as built.
  mv "$bin/.$binary.tmp" "$bin/$binary"
  if ! cmp -s "$here/$name/go.mod" "$work/go.mod" || ! cmp -s "$here/$name/go.sum" "$work/go.sum"; then
    log "warning: $name: go changed the wrapper's go.mod/go.sum; compare $work with $here/$name"
  fi
  log "$name: built $bin/$binary in $(( $(date +%s) - started )) s"
}

status=0
for t in "${TOOLS[@]}"; do
  IFS='|' read -r name binary pkg var mod strip extra <<<"$t"
  if [[ -x $bin/$binary ]]; then
    log "$name: cached $bin/$binary"
    continue
  fi
  reason=$(skip_reason "$name")
  if [[ -n $reason ]]; then
    log "skip $name: $reason"
    status=3
    continue
  fi
  build_tool "$name" "$binary" "$pkg" "$var" "$mod" "$strip" "$extra"
done

log "tools in $bin ($(du -sh "$root" | cut -f1) with sources and logs)"
echo "$bin"
echo "export PATH=\"$bin:\$PATH\""
exit "$status"

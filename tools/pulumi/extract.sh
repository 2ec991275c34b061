#!/usr/bin/env bash
# Check out one tree of a git clone into a folder, without test data, for build.sh:
#
#   extract.sh CLONE TREE-ISH DEST LABEL      (TREE-ISH: a commit, or COMMIT:SUBDIR)
#
# The build reads no testdata/, and a partial clone may lack its blobs, so it is left out. git 2.39's
# `archive` reads blobs that an exclude pathspec leaves out all the same and fails on a missing one
# ("cannot read <sha>"), so the files are checked out through an index of our own instead. A blob the
# clone lacks outside testdata/ is left out too, and named on stderr with LABEL: if the build needs
# it, `go build` fails naming the file. Submodule entries (mode 160000) have no content in the clone.
set -euo pipefail
clone=${1:?usage: extract.sh CLONE TREE-ISH DEST LABEL} tree=${2:?} dest=${3:?} label=${4:-extract}
git_dir=$(git -C "$clone" rev-parse --absolute-git-dir)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git -C "$clone" ls-tree -r --full-tree "$tree" |
  awk -F '\t' '$1 !~ /^160000 / && $2 !~ /(^|\/)testdata\//' >"$tmp/listing"
missing=$(awk '{print $3}' "$tmp/listing" | git -C "$clone" cat-file --batch-check | awk '$2 == "missing" {print $1}')
if [[ -n $missing ]]; then
  grep -F -f <(printf '%s\n' "$missing") "$tmp/listing" | cut -f2 | sed "s|^|$label: not in the clone, left out: |" >&2
  grep -v -F -f <(printf '%s\n' "$missing") "$tmp/listing" >"$tmp/keep" || true
  mv "$tmp/keep" "$tmp/listing"
fi
mkdir -p "$dest"
GIT_INDEX_FILE=$tmp/index git --git-dir="$git_dir" --work-tree="$dest" update-index --index-info <"$tmp/listing"
GIT_INDEX_FILE=$tmp/index git --git-dir="$git_dir" --work-tree="$dest" checkout-index -a -f

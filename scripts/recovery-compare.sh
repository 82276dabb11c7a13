#!/usr/bin/env bash
# Recovery of a long WAL tail, before and after: builds REV's vidx (default
# main) from a worktree of its own, then runs scripts/recovery-tail.sh once
# with that binary and once with this checkout's, on the same kind of data
# (a collection whose log holds POINTS one-point records above its
# checkpoint). Each run prints when the port first answered and when the
# collection was ready, counted from the server's start.
#
#   scripts/recovery-compare.sh [REV] [POINTS] [DIM]   (defaults: main, 100000, 128)
#
# REV is checked out in $VIDX_BEFORE_TARGET/src and built in
# $VIDX_BEFORE_TARGET (default target/before), both kept for the next run;
# copying target/release there first saves rebuilding the dependencies.
# VIDX_BEFORE_BIN=/path/to/vidx (a build of REV made elsewhere) skips that
# build; only the label then comes from REV.
set -euo pipefail
cd "$(dirname "$0")/.."
rev="${1:-main}"
points="${2:-100000}"
dim="${3:-128}"
target="${VIDX_BEFORE_TARGET:-$PWD/target/before}"
src="$target/src"
before="${VIDX_BEFORE_BIN:-}"
if [ -z "$before" ]; then
    if [ -d "$src" ]; then
        git -C "$src" checkout --quiet --detach "$rev"
    else
        mkdir -p "$target"
        git worktree add --quiet --detach "$src" "$rev"
    fi
    (cd "$src" && CARGO_TARGET_DIR="$target" cargo build --release --bin vidx)
    before="$target/release/vidx"
fi
echo "== before: $rev ($(git rev-parse --short "$rev")): $before"
VIDX_BIN="$before" scripts/recovery-tail.sh "$points" "$dim"
dirty=""
git diff --quiet HEAD || dirty=" + uncommitted changes"
echo "== after: $(git rev-parse --abbrev-ref HEAD) ($(git rev-parse --short HEAD)$dirty)"
scripts/recovery-tail.sh "$points" "$dim"

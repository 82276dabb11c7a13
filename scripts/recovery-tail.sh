#!/usr/bin/env bash
# Measures recovery of a long WAL tail through the real binary: when the
# port first answers and when the collection is ready (the ignored
# `recovery_of_a_long_wal_tail` test of tests/it/recovery.rs).
#
#   scripts/recovery-tail.sh [POINTS] [DIM]      (defaults: 100000 points, 128-d)
#
# VIDX_BIN=/path/to/vidx measures another build on the same data.
set -euo pipefail
cd "$(dirname "$0")/.."
export VIDX_TAIL_POINTS="${1:-100000}"
export VIDX_TAIL_DIM="${2:-128}"
exec cargo test --release --test it recovery::recovery_of_a_long_wal_tail -- --ignored --nocapture

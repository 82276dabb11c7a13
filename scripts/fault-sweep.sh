#!/usr/bin/env bash
# The full fault sweep: the ignored `fault_sweep_full` test of
# tests/it/sweep.rs, which runs the storage workload once per file operation
# and per way of failing (an errno, a crash, a power cut) through the
# storage::fs seam, restarts, and checks that every acknowledged write is
# there, no deleted point came back and every collection opens. CI runs
# every third operation (`fault_sweep`).
#
#   scripts/fault-sweep.sh
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo test --release --test it sweep::fault_sweep_full -- --ignored --nocapture

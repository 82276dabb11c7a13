#!/usr/bin/env bash
# A long run of the parser property tests of tests/it/parsers.rs: mutated
# WAL files, sealed segment files, manifests and .npy files must give a
# clean error or a correct value, never a panic.
#
#   scripts/fuzz-parsers.sh [CASES]     (default 100000 per parser; CI runs 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
export VIDX_PROPTEST_CASES="${1:-100000}"
exec cargo test --release --test it parsers:: -- --nocapture

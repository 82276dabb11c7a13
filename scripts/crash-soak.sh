#!/usr/bin/env bash
# Long crash-recovery soak: the ignored `crash_recovery_soak` test of
# tests/it/crash.rs, which kill -9s a real `vidx serve` at random moments while
# a client streams upserts and deletes, and checks after every restart that
# every acknowledged write survived.
#
#   scripts/crash-soak.sh [KILLS] [SEED]     (defaults: 200 kills, a fixed seed)
#
# On a failure the test names the round and the id, prints the server's last
# log lines and keeps the data directory for inspection.
set -euo pipefail
cd "$(dirname "$0")/.."
export VIDX_CRASH_KILLS="${1:-200}"
if [[ $# -ge 2 ]]; then
    export VIDX_CRASH_SEED="$2"
fi
exec cargo test --release --test it crash::crash_recovery_soak -- --ignored --nocapture

#!/usr/bin/env bash
# The cluster test: brings up the loopback cluster (scripts/cluster-up.sh),
# runs examples/cluster_check.rs against it (100k points through the router
# while kill -9 hits an index replica, a NATS server and the router; see the
# example's header for the checks), and brings the cluster down again,
# whatever happened. Bounded: the whole run is killed after 10 minutes.
set -euo pipefail
source "$(dirname "$0")/cluster-env.sh"
cd "$ROOT"

cargo build --release --bin vidx --example cluster_check
export VIDX_CLUSTER_DIR="$CL" ROUTER_ADDR PEER_ADDR="127.0.0.1:$(node_port 0 0)" VICTIM_ADDR="127.0.0.1:$(node_port 0 1)"
# Snapshots every 10k points of a shard, so a restarted replica has some to fetch.
export VIDX_NODE_ARGS="--snapshot-every 10000 --seal-threshold 20000"

trap '"$ROOT/scripts/cluster-down.sh" >/dev/null' EXIT
started=$(date +%s)
"$ROOT/scripts/cluster-up.sh"
echo "cluster up in $(( $(date +%s) - started )) s"
status=0
timeout --signal=KILL 600 "$ROOT/target/release/examples/cluster_check" || status=$?
echo "cluster test: $(( $(date +%s) - started )) s in all, exit $status"
if [[ $status -ne 0 ]]; then
    for f in "$CL"/logs/*.log; do
        echo "--- last lines of $f"
        tail -n 15 "$f"
    done
fi
exit $status

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
export VIDX_CLUSTER_DIR="$CL" VIDX_BIN="$VIDX" ROUTER_ADDR AUTH_ROUTER_ADDR PEER_ADDR="127.0.0.1:$(node_port 0 0)" VICTIM_ADDR="127.0.0.1:$(node_port 0 1)"
export NATS_MONITOR="http://127.0.0.1:$(nats_http 0)"
# A snapshot every 15k points of a shard (of ~50k): a restarted replica
# fetches one and still has the end of the stream to replay.
export VIDX_NODE_ARGS="--snapshot-every 15000 --seal-threshold 20000"

# KEEP_CLUSTER=1 leaves it up for a look (stop it with cluster-down.sh).
[[ -n "${KEEP_CLUSTER:-}" ]] || trap '"$ROOT/scripts/cluster-down.sh" >/dev/null' EXIT
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

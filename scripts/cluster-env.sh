# Shared settings of cluster-up.sh / cluster-down.sh / cluster-test.sh (sourced).
# Everything listens on loopback; ports are VIDX_PORT_BASE + offsets so that
# two clusters on one machine can be kept apart.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CL="${VIDX_CLUSTER_DIR:-$ROOT/cluster-run}"
BASE="${VIDX_PORT_BASE:-24000}"
VENV="${VIDX_ENGINES_VENV:-$ROOT/.venv-cluster}"
VIDX="${VIDX_BIN:-$ROOT/target/release/vidx}"
NATS_BIN="$VENV/bin/nats-server"
WEED_BIN="$VENV/bin/weed"
ETCD_BIN="${ETCD_BIN:-$(command -v etcd || echo /usr/bin/etcd)}"

SHARDS=2
REPLICAS=2
nats_port() { echo $((BASE + $1)); }          # client ports BASE+0..2
nats_route() { echo $((BASE + 10 + $1)); }    # cluster ports BASE+10..12
nats_http() { echo $((BASE + 5 + $1)); }      # monitoring BASE+5..7
ETCD_PORT=$((BASE + 20)); ETCD_PEER=$((BASE + 21))
WEED_MASTER=$((BASE + 30)); WEED_VOLUME=$((BASE + 31)); WEED_FILER=$((BASE + 32)); WEED_S3=$((BASE + 33))
node_port() { echo $((BASE + 40 + $1 * REPLICAS + $2)); }   # shard, replica
ROUTER_PORT=$((BASE + 50))
AUTH_ROUTER_PORT=$((BASE + 51))   # the cluster test's router with tokens

NATS_URLS="nats://127.0.0.1:$(nats_port 0),nats://127.0.0.1:$(nats_port 1),nats://127.0.0.1:$(nats_port 2)"
ETCD_URL="http://127.0.0.1:$ETCD_PORT"
S3_URL="http://127.0.0.1:$WEED_S3"
S3_BUCKET=vidx
# Loopback development credentials of the throw-away SeaweedFS; real
# deployments pass theirs through the environment (deploy/k8s: a Secret).
S3_ACCESS_KEY="${VIDX_S3_ACCESS_KEY:-vidx-dev}"
S3_SECRET_KEY="${VIDX_S3_SECRET_KEY:-vidx-dev-secret}"
ROUTER_ADDR="127.0.0.1:$ROUTER_PORT"
AUTH_ROUTER_ADDR="127.0.0.1:$AUTH_ROUTER_PORT"

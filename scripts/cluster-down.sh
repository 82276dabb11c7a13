#!/usr/bin/env bash
# Stops exactly the processes scripts/cluster-up.sh started: those named by
# its pid files, and only while the pid still runs the program it started
# (a pid reused by another process is left alone). SIGTERM, then SIGKILL
# after 10 s. --purge also removes the cluster's data.
set -uo pipefail
source "$(dirname "$0")/cluster-env.sh"

stopped=0
# vidx first (routers, then index nodes), the engines after them.
for f in "$CL"/pids/router*.pid "$CL"/pids/s*-r*.pid "$CL"/pids/nats-*.pid "$CL"/pids/weed.pid "$CL"/pids/etcd.pid; do
    [[ -e "$f" ]] || continue
    name=$(basename "$f" .pid)
    pid=$(cat "$f")
    # The start script's command line names the binary it ran.
    want=$(grep -o 'nohup [^ ]*' "$CL/bin/$name.sh" | cut -d' ' -f2)
    if [[ -n "$pid" && -r /proc/$pid/cmdline ]] && tr '\0' ' ' < /proc/$pid/cmdline | grep -qF -- "$want"; then
        kill -TERM "$pid" 2>/dev/null && stopped=$((stopped + 1))
        for ((i = 0; i < 50; i++)); do
            [[ -d /proc/$pid ]] || break
            sleep 0.2
        done
        [[ -d /proc/$pid ]] && kill -KILL "$pid" 2>/dev/null
    fi
    rm -f "$f"
done
echo "stopped $stopped processes"
if [[ "${1:-}" == "--purge" ]]; then
    rm -rf "$CL"
fi

#!/usr/bin/env bash
# Renders a demo series' HTML report and checks it in headless Chromium.
#
#   scripts/series-report-screenshot.sh [OUT_DIR]      (default: docs)
#
# Starts `vidx serve --demo` on a temporary data directory and a free
# loopback port, links the demo set, records a few investigators' decisions
# on the largest cross-border series (a rejected near-duplicate pair, a
# confirmed link, a label), writes `vidx series report` to
# OUT_DIR/series-report.html and a screenshot of it to
# OUT_DIR/series-report.png. Needs target/release/vidx (cargo build
# --release), python3 and Debian's `chromium` (apt-get install -y chromium).
# The server it started is stopped on exit.
set -euo pipefail

cd "$(dirname "$0")/.."
OUT=${1:-docs}
VIDX=target/release/vidx
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
[ -x "$VIDX" ] || { echo "build first: cargo build --release" >&2; exit 1; }
[ -n "$CHROMIUM" ] || { echo "install Chromium: apt-get install -y chromium" >&2; exit 1; }
mkdir -p "$OUT"

DATA=$(mktemp -d)
PROFILE=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
SERVER_PID=
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  rm -rf "$DATA" "$PROFILE"
}
trap cleanup EXIT

"$VIDX" serve --demo --data-dir "$DATA/vidx-data" --listen "127.0.0.1:$PORT" 2>"$DATA/serve.log" &
SERVER_PID=$!
export VIDX_SERVER="http://127.0.0.1:$PORT"
for _ in $(seq 1 300); do
  grep -q "vidx ready" "$DATA/serve.log" && break
  sleep 0.1
done
grep -q "vidx ready" "$DATA/serve.log" || { cat "$DATA/serve.log" >&2; exit 1; }

cd "$DATA"
"$OLDPWD/$VIDX" link --show 0 >/dev/null
cd "$OLDPWD"

# The largest cross-border series, and two of its near-duplicate members.
read -r SERIES A B C D < <("$VIDX" series list --cross-border true --page-size 1000 \
  | awk 'NR>1 && $1 ~ /^ser-/ {print $2, $1}' | sort -rn | head -1 | awk '{print $2}' \
  | xargs -I{} "$VIDX" series show {} --json | python3 -c '
import json, sys
j = json.load(sys.stdin)
s = j["series"]
dup = next(e for e in s["evidence"] if e["kind"] == "near-duplicate")
others = [m for m in s["media_ids"] if m not in (dup["a"], dup["b"])]
print(s["series_id"], dup["a"], dup["b"], others[0], others[-1])')

"$VIDX" series decide --reviewer "FR-OCRVP/analyst-2" --note "same room, another child: the faces differ" \
  reject "$A" "$B"
"$VIDX" series decide --reviewer "DE-BKA/analyst-7" --note "same bedding and wallpaper" \
  confirm "$C" "$D"
"$VIDX" series decide --reviewer "DE-BKA/analyst-7" --note "ICSE series name" \
  label "$SERIES" "S-0017 'Blue room'"
"$VIDX" series report "$SERIES" --out "$OUT/series-report.html"

"$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-background-networking \
  --disable-component-update --disable-sync --no-first-run --user-data-dir="$PROFILE" \
  --hide-scrollbars --window-size=1240,1960 \
  --screenshot="$PWD/$OUT/series-report.png" "file://$PWD/$OUT/series-report.html" 2>/dev/null
ls -l "$OUT/series-report.png"
echo "series $SERIES: report $OUT/series-report.html, screenshot $OUT/series-report.png"

#!/usr/bin/env bash
# The one command for vidx against hnswlib, FAISS (HNSW) and USearch:
#
#   benches/run-all.sh [--n 100000] [--dataset image|sift] [--queries 1000]
#                      [--efs 10,16,...] [--engines hnswlib,faiss-hnsw,usearch]
#                      [--skip-build]
#
# 1. cargo build --release (unless --skip-build);
# 2. vidx bench ann: generates the dataset, exports it to
#    benches/results/NAME/data and writes its own vidx-*.json beside it;
# 3. a venv at benches/peers/.venv with benches/peers/requirements.txt
#    (made once; remade when the requirements change);
# 4. run_peers.py on the exported dataset (each peer in its own process);
# 5. compare.py: benches/results/NAME/table.md and recall-qps.png.
#
# NAME is image-512-cosine-N or sift-128-l2-N. Run it on an otherwise idle
# machine: QPS on all cores means nothing while something else is running.
# VIDX=/path/to/vidx runs that binary instead (and skips cargo build).
set -euo pipefail

N=100000
DATASET=image
QUERIES=""
EFS=""
ENGINES="hnswlib,faiss-hnsw,usearch"
BUILD=1
usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --n) N="${2:?--n needs a value}"; shift 2 ;;
    --dataset) DATASET="${2:?--dataset needs a value}"; shift 2 ;;
    --queries) QUERIES="${2:?--queries needs a value}"; shift 2 ;;
    --efs) EFS="${2:?--efs needs a value}"; shift 2 ;;
    --engines) ENGINES="${2:?--engines needs a value}"; shift 2 ;;
    --skip-build) BUILD=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run-all.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done
case "$N" in ''|*[!0-9]*) echo "run-all.sh: --n must be a positive integer" >&2; exit 2 ;; esac
case "$DATASET" in
  image) NAME="image-512-cosine-$N" ;;
  sift) NAME="sift-128-l2-$N" ;;
  *) echo "run-all.sh: --dataset must be image or sift" >&2; exit 2 ;;
esac

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
PEERS="$ROOT/benches/peers"
OUT="$ROOT/benches/results/$NAME"
VENV="$PEERS/.venv"
VIDX_FROM_ENV="${VIDX:-}"
VIDX="${VIDX:-$ROOT/target/release/vidx}"
step() { printf '\n== %s (%s)\n' "$1" "$(date +%T)" >&2; }
START=$(date +%s)

if [ "$BUILD" = 1 ] && [ -z "$VIDX_FROM_ENV" ]; then
  step "cargo build --release"
  cargo build --release
fi
[ -x "$VIDX" ] || { echo "run-all.sh: no vidx binary at $VIDX" >&2; exit 1; }

# Old results of this dataset would be read by compare.py: start clean.
mkdir -p "$OUT"
rm -f "$OUT"/*.json "$OUT/table.md" "$OUT/recall-qps.png"

step "vidx bench ann --dataset $DATASET --n $N"
ARGS=(bench ann --dataset "$DATASET" --n "$N" --export "$OUT/data" --out "$OUT")
[ -n "$QUERIES" ] && ARGS+=(--queries "$QUERIES")
[ -n "$EFS" ] && ARGS+=(--efs "$EFS")
"$VIDX" "${ARGS[@]}" >&2  # its own table goes to stderr: stdout is the comparison
for f in base.npy query.npy gt.npy meta.json; do
  [ -f "$OUT/data/$f" ] || { echo "run-all.sh: vidx did not export $OUT/data/$f" >&2; exit 1; }
done

step "python venv ($VENV)"
PY="${PYTHON:-python3}"
STAMP="$VENV/.requirements.sha256"
WANT="$( (sha256sum "$PEERS/requirements.txt" | cut -d' ' -f1; "$PY" -c 'import sys; print(sys.version)') | sha256sum | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  # hnswlib has no wheels: pip compiles it with -march=native. Build it here,
  # not from pip's wheel cache, which may hold a build for another CPU.
  HNSWLIB_PIN="$(grep -E '^hnswlib==' "$PEERS/requirements.txt" | cut -d' ' -f1)"
  "$VENV/bin/python" -m pip install --quiet --no-cache-dir "$HNSWLIB_PIN"
  "$VENV/bin/python" -m pip install --quiet -r "$PEERS/requirements.txt"
  echo "$WANT" > "$STAMP"
else
  echo "reusing $VENV" >&2
fi

step "peers: $ENGINES"
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (set on some processors of this
# workplace for old OpenBLAS builds) slow numpy and faiss's OpenBLAS: they are
# dropped for the benchmark processes only (run_peers.py drops them for its
# engine subprocesses too).
PARGS=("$OUT/data" --out "$OUT" --engines "$ENGINES")
[ -n "$EFS" ] && PARGS+=(--efs "$EFS")
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$VENV/bin/python" "$PEERS/run_peers.py" "${PARGS[@]}"

step "compare"
"$VENV/bin/python" "$PEERS/compare.py" "$OUT" --png "$OUT/recall-qps.png" --md "$OUT/table.md" > /dev/null
echo >&2
cat "$OUT/table.md"
echo
echo "results: $OUT (table.md, recall-qps.png, *.json); $(( $(date +%s) - START )) s in all" >&2

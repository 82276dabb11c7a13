#!/usr/bin/env bash
# The one command for vidx against hnswlib, FAISS (HNSW, HNSW-SQ8), USearch
# (f32, i8, f16), Qdrant's embedded engine (f32, int8 + rescoring) and
# hnsw_rs, on a generated set and on the real embeddings:
#
#   benches/run-all.sh [--n 100000] [--dataset image|sift] [--queries 1000]
#                      [--efs 10,16,...] [--engines hnswlib,faiss-hnsw,...]
#                      [--modes mutable,sealed,...] [--real FILE.npy|none]
#                      [--skip-build]
#
# 1. cargo build --release --features peer-hnsw-rs (unless --skip-build);
# 2. for each dataset (the generated one; then the real one, --real, by
#    default data-samples/real/images.npy when it exists, queries held out
#    of it): vidx bench ann exports it to benches/results/NAME/data and
#    writes its vidx-*.json (and hnsw_rs.json) beside it;
# 3. a venv at benches/peers/.venv with benches/peers/requirements.txt
#    (made once; remade when the requirements change);
# 4. run_peers.py on the exported dataset (each peer in its own process);
# 5. compare.py: benches/results/NAME/table.md and recall-qps.png.
#
# NAME is image-512-cosine-N, sift-128-l2-N or the real file's stem. Run it
# on an otherwise idle machine: QPS on all cores means nothing while
# something else is running. VIDX=/path/to/vidx runs that binary instead
# (and skips cargo build; it must be built with --features peer-hnsw-rs
# for the hnsw_rs mode).
set -euo pipefail

N=100000
DATASET=image
QUERIES=""
# ef 384 and 512 add minutes and no target: every engine reaches its best
# recall by 256 on these sets.
EFS="10,16,24,32,48,64,96,128,192,256"
ENGINES="hnswlib,faiss-hnsw,faiss-hnsw-sq8,usearch,usearch-i8,usearch-f16,qdrant,qdrant-sq8"
MODES="mutable,sealed,sealed-sq8,sealed-sq4,sealed-f16,sealed-sq8-f16,grpc,grpc-sq8,hnsw_rs"
REAL=""
BUILD=1
usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --n) N="${2:?--n needs a value}"; shift 2 ;;
    --dataset) DATASET="${2:?--dataset needs a value}"; shift 2 ;;
    --queries) QUERIES="${2:?--queries needs a value}"; shift 2 ;;
    --efs) EFS="${2:?--efs needs a value}"; shift 2 ;;
    --engines) ENGINES="${2:?--engines needs a value}"; shift 2 ;;
    --modes) MODES="${2:?--modes needs a value}"; shift 2 ;;
    --real) REAL="${2:?--real needs a value}"; shift 2 ;;
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
VENV="$PEERS/.venv"
VIDX_FROM_ENV="${VIDX:-}"
VIDX="${VIDX:-$ROOT/target/release/vidx}"
step() { printf '\n== %s (%s)\n' "$1" "$(date +%T)" >&2; }
START=$(date +%s)
[ -z "$REAL" ] && [ -f "$ROOT/data-samples/real/images.npy" ] && REAL="$ROOT/data-samples/real/images.npy"
[ "$REAL" = none ] && REAL=""

if [ "$BUILD" = 1 ] && [ -z "$VIDX_FROM_ENV" ]; then
  step "cargo build --release --features peer-hnsw-rs"
  cargo build --release --features peer-hnsw-rs
fi
[ -x "$VIDX" ] || { echo "run-all.sh: no vidx binary at $VIDX" >&2; exit 1; }

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

# One dataset end to end: vidx (which generates or reads it and exports it),
# the peers on the export, the comparison. $1 = NAME, the rest = how vidx
# bench ann gets the data.
run_dataset() {
  local name="$1"; shift
  local out="$ROOT/benches/results/$name"
  # Old results of this dataset would be read by compare.py: start clean.
  mkdir -p "$out"
  rm -f "$out"/*.json "$out/table.md" "$out/recall-qps.png"
  step "vidx bench ann: $name ($MODES)"
  local args=(bench ann "$@" --modes "$MODES" --export "$out/data" --out "$out")
  [ -n "$QUERIES" ] && args+=(--queries "$QUERIES")
  [ -n "$EFS" ] && args+=(--efs "$EFS")
  "$VIDX" "${args[@]}" >&2  # its own table goes to stderr: stdout is the comparison
  for f in base.npy query.npy gt.npy meta.json; do
    [ -f "$out/data/$f" ] || { echo "run-all.sh: vidx did not export $out/data/$f" >&2; exit 1; }
  done
  step "peers on $name: $ENGINES"
  # OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (set on some processors of this
  # workplace for old OpenBLAS builds) slow numpy and faiss's OpenBLAS: they
  # are dropped for the benchmark processes only (run_peers.py drops them for
  # its engine subprocesses too).
  local pargs=("$out/data" --out "$out" --engines "$ENGINES")
  [ -n "$EFS" ] && pargs+=(--efs "$EFS")
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$VENV/bin/python" "$PEERS/run_peers.py" "${pargs[@]}"
  step "compare $name"
  "$VENV/bin/python" "$PEERS/compare.py" "$out" --png "$out/recall-qps.png" --md "$out/table.md" > /dev/null
  echo >&2
  cat "$out/table.md"
  echo
  echo "results: $out (table.md, recall-qps.png, *.json)" >&2
}

run_dataset "$NAME" --dataset "$DATASET" --n "$N"
if [ -n "$REAL" ]; then
  [ -f "$REAL" ] || { echo "run-all.sh: --real $REAL: no such file" >&2; exit 2; }
  stem="$(basename "$REAL" .npy)"
  run_dataset "real-$stem" --dataset "$REAL" --metric cosine
else
  echo "run-all.sh: no real set (data-samples/real/images.npy absent; --real FILE.npy)" >&2
fi
echo "$(( $(date +%s) - START )) s in all" >&2

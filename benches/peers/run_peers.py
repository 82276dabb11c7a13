#!/usr/bin/env python3
"""Runs one dataset through the peer HNSW libraries the way `vidx bench ann`
runs vidx, and writes one result JSON per engine in vidx's schema.

    python run_peers.py DATASET_DIR --out RESULTS_DIR \
        [--engines hnswlib,faiss-hnsw,usearch] [--efs 10,16,...] [--threads N]

DATASET_DIR is what `vidx bench ann --export DIR` (or make_dataset.py)
writes: base.npy, query.npy, gt.npy, meta.json. Every engine runs in its own
fresh subprocess, so its peak RSS is its own. Per engine:

- build with M=16, ef_construction=200 on --threads threads (default: the
  cores this process may run on); build seconds and inserts/s;
- for every ef of the sweep (ef below k is raised to k, as vidx does): warm
  up on the first 100 queries, then one thread, one query per call (qps_1t,
  p50/p99 latency in ms), then the library's batch API on one thread
  (qps_1t_batch, an extra field: the same work without a Python call per
  query) and on all threads (qps_all); recall@k against gt[:, :k];
- memory: peak RSS (ru_maxrss) after build and sweep, the RSS after loading
  the data (baseline, which includes the interpreter, numpy, the library and
  the dataset) and after the build;
- index_bytes / disk_bytes: the size of the index saved to a temp dir.

Engines: hnswlib, faiss-hnsw, usearch (float32 storage, as vidx); the
quantized ones: faiss-hnsw-sq8 (IndexHNSWSQ, 8-bit), usearch-i8 and
usearch-f16, qdrant (Qdrant's embedded engine, qdrant-edge-py) and
qdrant-sq8 (its int8 scalar quantization with rescoring); and the opt-in
usearch-bf16 (usearch's own default on CPUs with bf16 support).
"""

import argparse
import gc
import importlib.metadata
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

DEFAULT_ENGINES = "hnswlib,faiss-hnsw,faiss-hnsw-sq8,usearch,usearch-i8,usearch-f16,qdrant,qdrant-sq8"
ALL_ENGINES = ["hnswlib", "faiss-hnsw", "faiss-hnsw-sq8", "usearch", "usearch-i8", "usearch-f16",
               "usearch-bf16", "qdrant", "qdrant-sq8"]
DEFAULT_EFS = "10,16,24,32,48,64,96,128,192,256,384,512"
WARMUP = 100

# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are set on some processors of this
# workplace because old OpenBLAS builds misbehave there; they slow a current
# numpy (and the OpenBLAS inside faiss-cpu). They are dropped for the
# benchmark subprocesses only, never for tests or CI.
BLAS_ENV_DROP = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def proc_status_bytes(key):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def current_rss_bytes():
    return proc_status_bytes("VmRSS:") or peak_rss_bytes()


def percentile(sorted_ms, p):
    """Nearest rank, as vidx: index round((len-1) * p), halves away from 0."""
    if not sorted_ms:
        return 0.0
    return sorted_ms[int(math.floor((len(sorted_ms) - 1) * p + 0.5))]


def recall_at(got, gt, k):
    """Hits of each result's first k among gt[:k], over queries x k (as vidx)."""
    hit = 0
    for g, t in zip(got, gt):
        ts = set(int(x) for x in t[:k])
        hit += sum(1 for x in list(g)[:k] if int(x) in ts)
    return hit / (len(got) * k)


# ---------------------------------------------------------------- engines --

class Hnswlib:
    name = "hnswlib"

    def __init__(self, metric, dim, m, ef_construction):
        import hnswlib
        self.lib = hnswlib
        self.version = importlib.metadata.version("hnswlib")
        self.space = {"cosine": "cosine", "l2": "l2", "dot": "ip"}[metric]
        self.dim, self.m, self.efc = dim, m, ef_construction
        self.index = None

    def build(self, base, threads):
        import numpy as np
        p = self.lib.Index(space=self.space, dim=self.dim)
        p.init_index(max_elements=base.shape[0], ef_construction=self.efc, M=self.m, random_seed=100)
        p.set_num_threads(threads)
        p.add_items(base, np.arange(base.shape[0]), num_threads=threads)
        self.index = p

    def set_ef(self, ef):
        self.index.set_ef(ef)

    def search_one(self, q, k):
        labels, _ = self.index.knn_query(q, k=k, num_threads=1)
        return labels[0]

    def search_batch(self, qs, k, threads):
        labels, _ = self.index.knn_query(qs, k=k, num_threads=threads)
        return labels

    def save(self, path):
        self.index.save_index(path)


class FaissHnsw:
    name = "faiss-hnsw"

    def __init__(self, metric, dim, m, ef_construction):
        import faiss
        self.faiss = faiss
        self.version = faiss.__version__
        self.metric = faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT
        self.dim, self.m, self.efc = dim, m, ef_construction
        self.index = None
        self.threads = None

    def _omp(self, n):
        if self.threads != n:
            self.faiss.omp_set_num_threads(n)
            self.threads = n

    def build(self, base, threads):
        idx = self.faiss.IndexHNSWFlat(self.dim, self.m, self.metric)
        idx.hnsw.efConstruction = self.efc
        self._omp(threads)
        idx.add(base)
        self.index = idx

    def set_ef(self, ef):
        self.index.hnsw.efSearch = ef

    def search_one(self, q, k):
        self._omp(1)
        _, labels = self.index.search(q.reshape(1, -1), k)
        return labels[0]

    def search_batch(self, qs, k, threads):
        self._omp(threads)
        _, labels = self.index.search(qs, k)
        return labels

    def save(self, path):
        self.faiss.write_index(self.index, path)


class USearch:
    name = "usearch"
    dtype = "f32"  # vidx stores float32; usearch would pick bf16 on CPUs with AVX-512 BF16

    def __init__(self, metric, dim, m, ef_construction):
        from usearch.index import Index
        self.Index = Index
        self.version = importlib.metadata.version("usearch")
        self.metric = {"cosine": "cos", "l2": "l2sq", "dot": "ip"}[metric]
        self.dim, self.m, self.efc = dim, m, ef_construction
        self.index = None

    def build(self, base, threads):
        import numpy as np
        # ndim and the rest are keyword-only in usearch 2.x.
        idx = self.Index(ndim=self.dim, metric=self.metric, dtype=self.dtype,
                         connectivity=self.m, expansion_add=self.efc, expansion_search=64)
        idx.add(np.arange(base.shape[0], dtype=np.uint64), base, threads=threads)
        self.index = idx

    def set_ef(self, ef):
        self.index.expansion_search = ef

    def search_one(self, q, k):
        return self.index.search(q, k, threads=1).keys

    def search_batch(self, qs, k, threads):
        return self.index.search(qs, k, threads=threads).keys

    def save(self, path):
        self.index.save(path)

    def extra_notes(self):
        return f"usearch dtype {self.index.dtype}, kernels {self.index.hardware_acceleration}"


class USearchBf16(USearch):
    name = "usearch-bf16"
    dtype = "bf16"


class USearchI8(USearch):
    """int8 storage; USearch walks and answers in i8 (no f32 rescoring)."""
    name = "usearch-i8"
    dtype = "i8"


class USearchF16(USearch):
    name = "usearch-f16"
    dtype = "f16"


class FaissHnswSq8(FaissHnsw):
    """faiss.IndexHNSWSQ with 8-bit scalar quantization (per-dimension
    ranges trained on the base): the walk and the answer are in SQ8, no
    rescoring with f32."""
    name = "faiss-hnsw-sq8"

    def build(self, base, threads):
        idx = self.faiss.IndexHNSWSQ(self.dim, self.faiss.ScalarQuantizer.QT_8bit, self.m, self.metric)
        idx.hnsw.efConstruction = self.efc
        self._omp(threads)
        idx.train(base)
        idx.add(base)
        self.index = idx


class Qdrant:
    """Qdrant's embedded engine (qdrant-edge-py): one shard, asked for one
    segment (one HNSW graph, like the other engines; the notes say how many
    it made), vectors and graph in RAM."""
    name = "qdrant"
    quantized = False

    def __init__(self, metric, dim, m, ef_construction):
        import qdrant_edge as qe
        self.qe = qe
        self.version = importlib.metadata.version("qdrant-edge-py")
        self.distance = {"cosine": qe.Distance.Cosine, "l2": qe.Distance.Euclid, "dot": qe.Distance.Dot}[metric]
        self.dim, self.m, self.efc = dim, m, ef_construction
        self.shard = None
        self.tmp = tempfile.mkdtemp(prefix=f"vidx-peer-{self.name}-")
        self.params = None

    def build(self, base, threads):
        qe = self.qe
        quant = None
        if self.quantized:
            quant = qe.ScalarQuantizationConfig(type=qe.ScalarType.Int8, quantile=0.99,
                                                memory=qe.Memory.Pinned)
        config = qe.EdgeConfig(
            vectors=qe.EdgeVectorParams(size=self.dim, distance=self.distance, memory=qe.Memory.Cached),
            hnsw_config=qe.HnswIndexConfig(m=self.m, ef_construct=self.efc, full_scan_threshold=1,
                                          max_indexing_threads=threads),
            quantization_config=quant,
            optimizers=qe.EdgeOptimizersConfig(default_segment_number=1, max_segment_size=100_000_000,
                                               indexing_threshold=1),
            max_search_threads=threads,
            wal_enabled=False,
        )
        path = os.path.join(self.tmp, "shard")
        self.shard = qe.EdgeShard.create(path, config)
        step = 2000
        for s in range(0, base.shape[0], step):
            rows = base[s:s + step]
            self.shard.update(qe.UpdateOperation.upsert_points(
                [qe.Point(s + i, rows[i].tolist()) for i in range(rows.shape[0])]))
        self.shard.optimize()
        self.shard.flush()
        info = self.shard.info()
        self.info = f"{info.segments_count} segment(s), {info.indexed_vectors_count} of {info.points_count} indexed"

    def set_ef(self, ef):
        qe = self.qe
        quant = qe.QuantizationSearchParams(rescore=True) if self.quantized else None
        self.params = qe.SearchParams(hnsw_ef=ef, quantization=quant)

    def prepare_queries(self, query):
        # Lists, made once: the binding takes Python lists, not arrays.
        self.qlists = [q.tolist() for q in query]

    def _request(self, v, k):
        return self.qe.SearchRequest(query=self.qe.Query.Nearest(v), limit=k, params=self.params)

    def search_one(self, q, k):
        v = q if isinstance(q, list) else q.tolist()
        return [p.id for p in self.shard.search(self._request(v, k))]

    def search_batch(self, qs, k, threads):
        from concurrent.futures import ThreadPoolExecutor
        lists = self.qlists if len(qs) == len(self.qlists) else [q.tolist() for q in qs]
        qe = self.qe

        def run(part):
            req = qe.QueryBatchRequest([qe.QueryRequest(limit=k, query=qe.Query.Nearest(v), params=self.params)
                                        for v in part])
            return [[p.id for p in r] for r in self.shard.query_batch(req)]
        if threads <= 1:
            return run(lists)
        chunk = (len(lists) + threads * 4 - 1) // (threads * 4)
        parts = [lists[i:i + chunk] for i in range(0, len(lists), chunk)]
        with ThreadPoolExecutor(threads) as ex:
            return [r for rs in ex.map(run, parts) for r in rs]

    def save(self, path):
        self.shard.flush()
        os.makedirs(path, exist_ok=True)
        shutil.copytree(os.path.join(self.tmp, "shard"), os.path.join(path, "shard"))

    def extra_notes(self):
        q = "int8 scalar quantization (quantile 0.99, codes pinned in RAM), rescore=True" if self.quantized \
            else "no quantization"
        # The segment count is the engine's (default_segment_number=1 is a
        # target its optimizer may not meet), read back after optimize().
        return f"qdrant-edge {self.info}; {q}; vectors Memory.Cached; WAL off"


class QdrantSq8(Qdrant):
    name = "qdrant-sq8"
    quantized = True


ENGINES = {c.name: c for c in (Hnswlib, FaissHnsw, FaissHnswSq8, USearch, USearchI8, USearchF16,
                               USearchBf16, Qdrant, QdrantSq8)}


# ----------------------------------------------------------------- worker --

def blas_info():
    try:
        from threadpoolctl import threadpool_info
        return "; ".join(
            f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} ({i.get('prefix')})"
            for i in threadpool_info())
    except Exception as e:  # threadpoolctl is optional
        return f"threadpoolctl unavailable: {e}"


def run_engine(engine_name, data_dir, out_dir, efs, k, m, efc, threads):
    import numpy as np

    engine = ENGINES[engine_name](*_meta_args(data_dir), m, efc)  # imports the library
    with open(os.path.join(data_dir, "meta.json")) as f:
        meta = json.load(f)
    base = np.load(os.path.join(data_dir, "base.npy"))
    query = np.load(os.path.join(data_dir, "query.npy"))
    gt = np.load(os.path.join(data_dir, "gt.npy"))
    base = np.ascontiguousarray(base, dtype=np.float32)
    query = np.ascontiguousarray(query, dtype=np.float32)
    n, dim = base.shape
    nq = query.shape[0]
    if dim != meta["dim"] or query.shape[1] != dim or gt.shape[0] != nq:
        raise SystemExit(f"{data_dir}: shapes base {base.shape}, query {query.shape}, gt {gt.shape} "
                         f"do not fit meta.json {meta}")
    if n < k:
        raise SystemExit(f"{data_dir}: {n} points, fewer than k = {k}")
    if gt.shape[1] < min(k, n):
        raise SystemExit(f"{data_dir}: gt.npy has {gt.shape[1]} columns, fewer than k = {k}")
    baseline = current_rss_bytes()
    log = lambda s: print(f"[{engine_name}] {s}", file=sys.stderr, flush=True)
    log(f"{meta['name']}: {n} x {dim}-d {meta['metric']}, {nq} queries; {engine.name} {engine.version}")

    t = time.perf_counter()
    engine.build(base, threads)
    build_s = time.perf_counter() - t
    after_build = current_rss_bytes()
    log(f"built in {build_s:.1f} s ({n / build_s:.0f} inserts/s, {threads} threads)")

    points = []
    queries = [query[i] for i in range(nq)]
    if hasattr(engine, "prepare_queries"):
        engine.prepare_queries(query)
        queries = engine.qlists
    for ef in efs:
        ef = max(ef, k)
        engine.set_ef(ef)
        for q in queries[:WARMUP]:
            engine.search_one(q, k)
        gc.disable()
        lat = [0.0] * nq
        got = [None] * nq
        pc = time.perf_counter
        t0 = pc()
        for i, q in enumerate(queries):
            s = pc()
            got[i] = engine.search_one(q, k)
            lat[i] = (pc() - s) * 1e3
        qps_1t = nq / (pc() - t0)
        t0 = pc()
        engine.search_batch(query, k, 1)
        qps_1t_batch = nq / (pc() - t0)
        t0 = pc()
        par = engine.search_batch(query, k, threads)
        qps_all = nq / (pc() - t0)
        gc.enable()
        lat.sort()
        p = {"ef": ef, "recall": recall_at(got, gt, k), "qps_1t": qps_1t, "qps_all": qps_all,
             "p50_ms": percentile(lat, 0.5), "p99_ms": percentile(lat, 0.99),
             "qps_1t_batch": qps_1t_batch}
        batch_recall = recall_at(par, gt, k)
        if abs(batch_recall - p["recall"]) > 0.02:
            log(f"  warning: ef {ef}: batched recall {batch_recall:.4f} differs from single-query recall")
        log(f"  ef {ef:>4}: recall@{k} {p['recall']:.4f}  {qps_1t:>8.0f} QPS (1 thread)  "
            f"{qps_1t_batch:>8.0f} (1 thread, batch)  {qps_all:>8.0f} (all)  "
            f"p50 {p['p50_ms']:.3f} ms  p99 {p['p99_ms']:.3f} ms")
        points.append(p)
    peak = peak_rss_bytes()
    # What serving holds: the index and the query path's memory (the RSS
    # now, less the interpreter, the library and the dataset).
    serving = max(0, current_rss_bytes() - baseline)

    tmp = tempfile.mkdtemp(prefix=f"vidx-peer-{engine_name}-")
    try:
        path = os.path.join(tmp, "index")
        engine.save(path)
        disk = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(tmp) for f in fs)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    notes = (f"{engine.name} {engine.version} via Python {sys.version.split()[0]}; qps_1t and latency: "
             "one query per Python call on one thread (includes the call overhead; qps_1t_batch is the "
             "batch API on one thread); qps_all: the batch API on all threads; peak RSS covers the "
             "interpreter, numpy, the library, the dataset, the build and the sweep. BLAS: " + blas_info())
    if hasattr(engine, "extra_notes"):
        notes += "; " + engine.extra_notes()
    report = {
        "engine": engine.name,
        "version": engine.version,
        "dataset": {"name": meta["name"], "metric": meta["metric"], "n": int(n), "dim": int(dim),
                    "queries": int(nq)},
        "params": {"m": m, "ef_construction": efc, "k": k, "threads": threads},
        "build": {"seconds": build_s, "inserts_per_s": n / build_s, "threads": threads},
        "memory": {"peak_rss_bytes": peak, "baseline_rss_bytes": baseline,
                   "rss_after_build_bytes": after_build, "index_bytes": disk,
                   "serving_rss_bytes": serving, "hot_bytes_per_vector": serving / n},
        "disk_bytes": disk,
        "points": points,
        "notes": notes,
    }
    os.makedirs(out_dir, exist_ok=True)
    out = os.path.join(out_dir, f"{engine.name}.json")
    with open(out + ".tmp", "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    os.replace(out + ".tmp", out)
    log(f"wrote {out} (peak RSS {peak / 2**20:.0f} MiB, index {disk / 2**20:.1f} MiB on disk)")


def _meta_args(data_dir):
    with open(os.path.join(data_dir, "meta.json")) as f:
        meta = json.load(f)
    if meta.get("metric") not in ("cosine", "l2", "dot"):
        raise SystemExit(f"{data_dir}/meta.json: metric {meta.get('metric')!r}: want cosine, l2 or dot")
    return meta["metric"], int(meta["dim"])


# ----------------------------------------------------------------- parent --

def parse_ints(s, what):
    try:
        v = [int(x) for x in s.split(",") if x.strip()]
    except ValueError:
        raise SystemExit(f"{what}: {s!r} is not a comma-separated list of integers")
    if not v or any(x <= 0 for x in v):
        raise SystemExit(f"{what}: want positive integers")
    return v


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dataset_dir")
    ap.add_argument("--out", required=True, help="directory for <engine>.json")
    ap.add_argument("--engines", default=DEFAULT_ENGINES, help=f"comma-separated, of {','.join(ALL_ENGINES)}")
    ap.add_argument("--efs", default=DEFAULT_EFS, help="the ef sweep")
    ap.add_argument("--threads", type=int, default=cores(), help="threads for build and qps_all")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=200)
    ap.add_argument("--timeout", type=float, default=None, help="seconds per engine (default: none)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)  # one engine, in this process
    a = ap.parse_args(argv)

    efs = parse_ints(a.efs, "--efs")
    if a.threads <= 0 or a.k <= 0 or a.m <= 0 or a.ef_construction <= 0:
        ap.error("--threads, --k, --m and --ef-construction must be positive")
    for f in ("base.npy", "query.npy", "gt.npy", "meta.json"):
        if not os.path.isfile(os.path.join(a.dataset_dir, f)):
            ap.error(f"{a.dataset_dir}: no {f} (want the layout of vidx bench ann --export)")

    if a.worker:
        run_engine(a.worker, a.dataset_dir, a.out, efs, a.k, a.m, a.ef_construction, a.threads)
        return 0

    engines = [e.strip() for e in a.engines.split(",") if e.strip()]
    unknown = [e for e in engines if e not in ENGINES]
    if unknown or not engines:
        ap.error(f"--engines: unknown {unknown}; choose from {','.join(ALL_ENGINES)}")
    env = {k: v for k, v in os.environ.items() if k not in BLAS_ENV_DROP}
    failed = []
    for e in engines:
        cmd = [sys.executable, os.path.abspath(__file__), a.dataset_dir, "--out", a.out, "--worker", e,
               "--efs", ",".join(map(str, efs)), "--threads", str(a.threads), "--k", str(a.k),
               "--m", str(a.m), "--ef-construction", str(a.ef_construction)]
        t = time.perf_counter()
        try:
            rc = subprocess.run(cmd, env=env, timeout=a.timeout).returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
        dt = time.perf_counter() - t
        print(f"[{e}] {'done' if rc == 0 else f'FAILED ({rc})'} in {dt:.0f} s", file=sys.stderr, flush=True)
        if rc != 0:
            failed.append(e)
    if failed:
        print(f"failed engines: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Writes a synthetic dataset in the layout `vidx bench ann --export` writes,
so the peer scripts can be tried without the Rust side.

    python make_dataset.py --kind image --n 20000 --queries 1000 --out DIR

DIR gets base.npy (float32, n x d), query.npy (float32, q x d), gt.npy
(int32, q x min(100, n): exact neighbours, ascending distance) and meta.json.

- image: 512-d (--dim) unit vectors, cosine; one centre per ~100 points and
  each point at cosine ~0.6 to its centre (centre + 1.3 x noise, normalised),
  like the embeddings of images of one series.
- sift: 128-d non-negative integer-valued vectors around centres, L2.

The distributions follow vidx's generator (src/tools/bench_ann.rs) but not its random
streams: the vectors differ from what `vidx bench ann` generates for the same
seed, so compare engines only on one exported directory.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

GT_COLUMNS = 100


def image_rows(rng, n_total, n, dim, chunk=50_000):
    centres = max(n // 100, 1)
    c = rng.standard_normal((centres, dim), dtype=np.float32)
    out = np.empty((n_total, dim), dtype=np.float32)
    for s in range(0, n_total, chunk):
        e = min(s + chunk, n_total)
        rows = np.arange(s, e, dtype=np.int64)
        v = c[(rows * 7919) % centres] + np.float32(1.3) * rng.standard_normal((e - s, dim), dtype=np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        out[s:e] = v
    return out


def sift_rows(rng, n_total, n, chunk=50_000):
    centres = max(n // 100, 1)
    c = np.abs(rng.standard_normal((centres, 128), dtype=np.float32) * 30.0)
    out = np.empty((n_total, 128), dtype=np.float32)
    for s in range(0, n_total, chunk):
        e = min(s + chunk, n_total)
        rows = np.arange(s, e, dtype=np.int64)
        v = c[(rows * 7919) % centres] + 12.0 * rng.standard_normal((e - s, 128), dtype=np.float32)
        out[s:e] = np.clip(np.rint(v), 0.0, 255.0)
    return out


def ground_truth(base, query, metric, k, budget_bytes=256 << 20):
    """Exact k nearest base rows per query, ascending distance, by brute
    force in chunks of queries (a chunk's score matrix stays under budget).
    L2 is computed in float64 (||b||^2 - 2 q.b loses precision in float32
    for SIFT-scale values); cosine and dot in float32."""
    n = base.shape[0]
    k = min(k, n)
    nq = query.shape[0]
    l2 = metric == "l2"
    dt = np.float64 if l2 else np.float32
    b = base.astype(dt, copy=False)
    bnorm = np.einsum("ij,ij->i", b, b) if l2 else None
    qchunk = max(1, min(nq, budget_bytes // (n * np.dtype(dt).itemsize)))
    gt = np.empty((nq, k), dtype=np.int32)
    for s in range(0, nq, qchunk):
        e = min(s + qchunk, nq)
        q = query[s:e].astype(dt, copy=False)
        if l2:
            # Smaller is nearer: ||q||^2 is the same for every row of a query.
            score = bnorm[None, :] - 2.0 * (q @ b.T)
        else:
            score = -(q @ b.T)  # larger dot / cosine is nearer
        if k < n:
            part = np.argpartition(score, k - 1, axis=1)[:, :k]
        else:
            part = np.tile(np.arange(n), (e - s, 1))
        ps = np.take_along_axis(score, part, axis=1)
        order = np.lexsort((part, ps), axis=1)  # by score, ties by row id
        gt[s:e] = np.take_along_axis(part, order, axis=1)
    return gt


def write_dataset(out, name, metric, base, query, gt):
    os.makedirs(out, exist_ok=True)
    np.save(os.path.join(out, "base.npy"), np.ascontiguousarray(base, dtype=np.float32))
    np.save(os.path.join(out, "query.npy"), np.ascontiguousarray(query, dtype=np.float32))
    np.save(os.path.join(out, "gt.npy"), np.ascontiguousarray(gt, dtype=np.int32))
    meta = {"name": name, "metric": metric, "n": int(base.shape[0]), "dim": int(base.shape[1]),
            "queries": int(query.shape[0])}
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    return meta


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", choices=["image", "sift"], default="image")
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--dim", type=int, default=512, help="dimension of the image kind (sift is 128)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    if a.n <= 0 or a.queries <= 0 or a.dim <= 0:
        ap.error("--n, --queries and --dim must be positive")

    t0 = time.perf_counter()
    rng = np.random.default_rng(a.seed)
    total = a.n + a.queries
    if a.kind == "image":
        rows, metric, name = image_rows(rng, total, a.n, a.dim), "cosine", f"image-{a.dim}-cosine-{a.n}"
    else:
        rows, metric, name = sift_rows(rng, total, a.n), "l2", f"sift-128-l2-{a.n}"
    base, query = rows[: a.n], rows[a.n:]
    t1 = time.perf_counter()
    gt = ground_truth(base, query, metric, GT_COLUMNS)
    t2 = time.perf_counter()
    meta = write_dataset(a.out, name, metric, base, query, gt)
    print(f"{meta['name']}: {a.n} x {base.shape[1]}-d {metric}, {a.queries} queries; "
          f"vectors {t1 - t0:.1f} s, exact ground truth {t2 - t1:.1f} s -> {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()

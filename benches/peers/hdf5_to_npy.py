#!/usr/bin/env python3
"""Converts an ann-benchmarks .hdf5 file (train / test / neighbors, attribute
"distance") to the dataset layout of `vidx bench ann --export`.

    python hdf5_to_npy.py glove-100-angular.hdf5 OUTDIR [--n N] [--queries Q]

OUTDIR gets base.npy, query.npy (float32; unit-normalised for angular /
cosine), gt.npy (int32, up to 100 columns), gt.ivecs (the same ground truth
for `vidx bench ann --gt-file`) and meta.json. With --n smaller than the
file's base set, the file's ground truth no longer holds and is recomputed
exactly (make_dataset.ground_truth).

To benchmark vidx and the peers on it:

    vidx bench ann --dataset OUTDIR/base.npy --queries-file OUTDIR/query.npy \
        --gt-file OUTDIR/gt.ivecs --metric cosine --export RESULTS/data --out RESULTS
    python run_peers.py RESULTS/data --out RESULTS
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_dataset import GT_COLUMNS, ground_truth, write_dataset  # noqa: E402

METRICS = {"angular": "cosine", "cosine": "cosine", "euclidean": "l2", "l2": "l2", "dot": "dot", "ip": "dot"}


def write_ivecs(path, a):
    a = np.ascontiguousarray(a, dtype=np.int32)
    rows = np.empty((a.shape[0], a.shape[1] + 1), dtype=np.int32)
    rows[:, 0] = a.shape[1]
    rows[:, 1:] = a
    rows.tofile(path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("hdf5")
    ap.add_argument("out")
    ap.add_argument("--n", type=int, help="keep the first N base vectors")
    ap.add_argument("--queries", type=int, help="keep the first Q queries")
    a = ap.parse_args(argv)
    import h5py

    with h5py.File(a.hdf5, "r") as f:
        dist = f.attrs.get("distance", "")
        dist = dist.decode() if isinstance(dist, bytes) else str(dist)
        if dist not in METRICS:
            raise SystemExit(f"{a.hdf5}: distance {dist!r} is not one of {sorted(METRICS)}")
        metric = METRICS[dist]
        n_file = f["train"].shape[0]
        n = min(a.n or n_file, n_file)
        nq = min(a.queries or f["test"].shape[0], f["test"].shape[0])
        base = np.asarray(f["train"][:n], dtype=np.float32)
        query = np.asarray(f["test"][:nq], dtype=np.float32)
        gt = np.asarray(f["neighbors"][:nq, :GT_COLUMNS], dtype=np.int32) if n == n_file and "neighbors" in f else None
    if metric == "cosine":
        for m in (base, query):
            norms = np.linalg.norm(m, axis=1, keepdims=True)
            norms[norms == 0] = 1.0
            m /= norms
    if gt is None:
        print(f"computing exact ground truth for {nq} queries over {n} points", file=sys.stderr)
        gt = ground_truth(base, query, metric, GT_COLUMNS)
    stem = os.path.splitext(os.path.basename(a.hdf5))[0]
    meta = write_dataset(a.out, f"{stem}-{n}", metric, base, query, gt)
    write_ivecs(os.path.join(a.out, "gt.ivecs"), gt)
    print(f"{meta['name']}: {n} x {meta['dim']}-d {metric}, {nq} queries -> {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()

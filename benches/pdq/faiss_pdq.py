"""FAISS's binary indexes on the hashes `vidx bench pdq --peers PYTHON` wrote.

Run by `vidx bench pdq` itself, once per index so that each process's memory
is its own; prints one JSON line with the same figures as vidx's rows.

    python benches/pdq/faiss_pdq.py DIR --index flat|multihash

DIR holds codes.u8 (n x 32 bytes), queries.u8 and truth.json (the radius,
the linear scan's answers, the planted near-copies). Single-threaded, as
vidx's rows. IndexBinaryMultiHash is set up as ThreatExchange's HMA sets it
up for PDQ: 16 hash tables of 16 bits with nflip = radius // 16 (1 at 31),
which by the pigeonhole rule misses nothing within the radius.

FAISS's binary range_search returns the codes at distance < radius, so it is
asked with radius + 1 for PDQ's "<= radius".
"""

import argparse
import json
import os
import sys
import time

import faiss
import numpy as np


def rss_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--index", choices=["flat", "multihash"], required=True)
    a = ap.parse_args()
    faiss.omp_set_num_threads(1)
    meta = json.load(open(os.path.join(a.dir, "truth.json")))
    radius = meta["radius"]
    codes = np.fromfile(os.path.join(a.dir, "codes.u8"), dtype=np.uint8).reshape(-1, 32)
    queries = np.fromfile(os.path.join(a.dir, "queries.u8"), dtype=np.uint8).reshape(-1, 32)
    before = rss_bytes()
    t = time.perf_counter()
    if a.index == "flat":
        index = faiss.IndexBinaryFlat(256)
        name = "FAISS IndexBinaryFlat"
    else:
        index = faiss.IndexBinaryMultiHash(256, 16, 16)
        index.nflip = radius // 16
        name = "FAISS IndexBinaryMultiHash (16 x 16 bits, nflip %d)" % index.nflip
    index.add(codes)
    build_s = time.perf_counter() - t
    # The index's own memory: what add() made resident (the input array was
    # resident before and is dropped after).
    ram = rss_bytes() - before
    del codes
    got, ms = [], []
    for i in range(len(queries)):
        t = time.perf_counter()
        lims, _, ids = index.range_search(queries[i : i + 1], radius + 1)
        ms.append((time.perf_counter() - t) * 1e3)
        got.append(set(int(x) for x in ids[lims[0] : lims[1]]))
    hit = sum(len(g & set(t)) for g, t in zip(got, meta["truth"]))
    total = sum(len(t) for t in meta["truth"])
    found = sum(len(g & set(p)) for g, p in zip(got, meta["planted"]))
    want = sum(len(p) for p in meta["planted"])
    extra = sum(len(g - set(t)) for g, t in zip(got, meta["truth"]))
    if extra:
        print("%s returned %d codes outside the radius" % (name, extra), file=sys.stderr)
    srt = sorted(ms)
    pct = lambda p: srt[round((len(srt) - 1) * p)]
    print(json.dumps({
        "engine": name + " (faiss %s)" % faiss.__version__,
        "build_s": build_s,
        "ram_mb": ram / 1048576.0,
        "qps": len(ms) / (sum(ms) / 1e3),
        "p50_ms": pct(0.5),
        "p99_ms": pct(0.99),
        "recall": hit / total if total else 1.0,
        "planted_found": "%d/%d" % (found, want),
    }))


if __name__ == "__main__":
    main()

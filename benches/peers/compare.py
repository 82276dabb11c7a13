#!/usr/bin/env python3
"""Puts vidx's and the peers' result JSONs side by side.

    python compare.py RESULTS_DIR [--png recall-qps.png] [--md table.md]

Reads every *.json in RESULTS_DIR (the schema of `vidx bench ann --out` and
run_peers.py). For each engine it interpolates QPS at recall@k 0.90, 0.95 and
0.99 on its 1-thread curve (qps_1t; for a peer, per ef the better of qps_1t
and qps_1t_batch, its batch API on one thread, so a ratio never measures the
Python call) and on its all-cores curve (qps_all):
walking the sweep by increasing ef, the first point at or above the target
and the point before it bracket the target and QPS is interpolated linearly
in recall between them; "n/a" if the curve never reaches the target; a value
marked * is the first point's QPS because even the smallest ef was already
above the target (so the real QPS there is at least that).

Prints a Markdown table: QPS at those recalls, build rate, memory and disk
per engine, then a ratio row "vidx-X ÷ peer" for every vidx engine (name
starting with "vidx") against every peer. QPS and build-rate ratios above 1
favour vidx; memory and disk ratios below 1 favour vidx. With --png, draws
recall (x) against 1-thread QPS (y, log scale) for every engine.
"""

import argparse
import glob
import json
import os
import sys

TARGETS = (0.90, 0.95, 0.99)
PEER_ORDER = ["hnswlib", "faiss-hnsw", "usearch", "qdrant", "hnsw_rs", "faiss-hnsw-sq8", "usearch-i8",
              "usearch-f16", "usearch-bf16", "qdrant-sq8"]
# Peers that walk and answer in f32 (the rest store compressed vectors).
F32_PEERS = {"hnswlib", "faiss-hnsw", "usearch", "qdrant", "hnsw_rs"}
VIDX_ORDER = ["vidx-sealed-sq8", "vidx-sealed-sq4", "vidx-sealed", "vidx-sealed-sq8-f16", "vidx-sealed-f16",
              "vidx-mutable", "vidx-grpc-sq8", "vidx-grpc"]
# vidx engines searched in process (gRPC has its own ratio rows).
VIDX_IN_PROCESS = {"vidx-sealed", "vidx-sealed-sq8", "vidx-sealed-sq4", "vidx-sealed-f16", "vidx-sealed-sq8-f16",
                   "vidx-mutable"}
MiB = 2 ** 20


def load_results(d):
    out = []
    for p in sorted(glob.glob(os.path.join(d, "*.json"))):
        try:
            with open(p) as f:
                r = json.load(f)
        except (OSError, ValueError) as e:
            print(f"warning: skipping {p}: {e}", file=sys.stderr)
            continue
        if not isinstance(r, dict) or "engine" not in r or not isinstance(r.get("points"), list):
            print(f"warning: skipping {p}: not a result file (no engine / points)", file=sys.stderr)
            continue
        r["_path"] = p
        out.append(r)
    return out


def engine_order(r):
    e = r["engine"]
    if e.startswith("vidx"):
        rank = VIDX_ORDER.index(e) if e in VIDX_ORDER else len(VIDX_ORDER)
        return (0, rank, e)
    return (1, PEER_ORDER.index(e) if e in PEER_ORDER else len(PEER_ORDER), e)


def qps_at(points, target, key):
    """(qps, lower_bound) at recall `target` on the curve ordered by ef, or
    (None, False) if the curve never gets there."""
    pts = sorted((p for p in points if p.get(key) is not None and p.get("recall") is not None),
                 key=lambda p: p["ef"])
    for i, p in enumerate(pts):
        if p["recall"] >= target:
            if i == 0:
                return float(p[key]), True
            a = pts[i - 1]
            r0, r1, q0, q1 = a["recall"], p["recall"], float(a[key]), float(p[key])
            return q0 + (target - r0) / (r1 - r0) * (q1 - q0), False
    return None, False


def g(r, *path):
    for k in path:
        if not isinstance(r, dict) or k not in r or r[k] is None:
            return None
        r = r[k]
    return r


def fmt_num(v, lb=False):
    if v is None:
        return "n/a"
    s = f"{v:,.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.2f}"
    return s + ("*" if lb else "")


def fmt_ratio(a, b, a_lb=False, b_lb=False):
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.2f}" + ("*" if a_lb or b_lb else "")


def index_rss(r):
    peak, base = g(r, "memory", "peak_rss_bytes"), g(r, "memory", "baseline_rss_bytes")
    return peak - base if peak is not None and base is not None else None


def one_thread_points(r):
    """The 1-thread curve: vidx's qps_1t (one query per Rust call); for a
    peer, per ef the better of one query per Python call (qps_1t) and its
    batch API on one thread (qps_1t_batch), so the Python call is never
    what a ratio against vidx measures."""
    out = []
    for p in r["points"]:
        q = max((p[k] for k in ("qps_1t", "qps_1t_batch") if p.get(k) is not None), default=None)
        out.append(dict(p, qps_1t=q))
    return out


def metrics(r):
    """Every column value of one engine: name -> (value, lower_bound)."""
    m = {}
    for key, tag, pts in (("qps_1t", "1t", one_thread_points(r)), ("qps_all", "all", r["points"])):
        for t in TARGETS:
            m[f"{tag}@{t:.2f}"] = qps_at(pts, t, key)
    m["build"] = (g(r, "build", "inserts_per_s"), False)
    m["rss"] = (g(r, "memory", "peak_rss_bytes"), False)
    m["rss_idx"] = (index_rss(r), False)
    m["serving"] = (g(r, "memory", "serving_rss_bytes"), False)
    m["hot"] = (g(r, "memory", "hot_bytes_per_vector"), False)
    # 0 = not written (hnsw_rs is never saved): no figure, not "0 MiB".
    m["disk"] = (g(r, "disk_bytes") or None, False)
    return m


QPS_COLS = [f"{tag}@{t:.2f}" for tag in ("1t", "all") for t in TARGETS]


def table(results):
    k = g(results[0], "params", "k") or 10
    head = ([f"QPS 1t @{t:.2f}" for t in TARGETS] + [f"QPS all @{t:.2f}" for t in TARGETS]
            + ["build inserts/s", "serving RSS MiB", "hot B/vector", "peak RSS MiB", "disk MiB", "max recall"])
    lines = [f"Recall@{k} targets; QPS interpolated on each engine's ef sweep "
             "(1t = one thread: vidx one query per call, a peer the better of one query per Python "
             "call and its batch API on one thread; all = all cores, batched/concurrent). "
             "Serving RSS: what the engine holds resident after its sweep (vidx sealed: resident pages "
             "of the segment's mapped files; peers: RSS less interpreter, library and dataset). Hot "
             "B/vector: bytes per vector a search must find in memory to run at full speed (vidx: graph "
             "+ codes, or graph + f32 without codes; peers: serving RSS / n, as they hold all in RAM).", "",
             "| engine | " + " | ".join(head) + " |",
             "|---|" + "---:|" * len(head)]
    ms = {}
    for r in results:
        m = ms[r["engine"]] = metrics(r)
        maxrec = max((p.get("recall", 0) for p in r["points"]), default=None)
        cells = [fmt_num(*m[c]) for c in QPS_COLS]
        cells.append(fmt_num(m["build"][0]))
        v = m["serving"][0]
        cells.append("n/a" if v is None else f"{v / MiB:,.1f}")
        v = m["hot"][0]
        cells.append("n/a" if v is None else f"{v:,.0f}")
        for c in ("rss", "disk"):
            v = m[c][0]
            cells.append("n/a" if v is None else f"{v / MiB:,.1f}")
        cells.append("n/a" if maxrec is None else f"{maxrec:.4f}")
        lines.append(f"| {r['engine']} {r.get('version', '')} | " + " | ".join(cells) + " |")
    lines += ratio_rows(results, ms)
    if any(lb for m in ms.values() for c in QPS_COLS for lb in [m[c][1]]):
        lines += ["", "\\* the smallest ef of the sweep was already above the target recall: "
                  "the QPS is that point's (a lower bound); a ratio involving it is approximate."]
    return "\n".join(lines)


def best(ms, engines, col):
    """(value, lower_bound, engine) of the engine with the highest value of col."""
    cands = [(ms[e][col][0], ms[e][col][1], e) for e in engines if e in ms and ms[e][col][0] is not None]
    return max(cands, default=(None, False, None))


def ratio_rows(results, ms):
    """The rows the targets are judged by: vidx's best in-process mode
    against the best f32 peer and the best peer of any mode (per column,
    naming the engines), the gRPC and memory ratios, and every vidx mode
    against every peer."""
    vidx = [r["engine"] for r in results if r["engine"].startswith("vidx")]
    peers = [r["engine"] for r in results if not r["engine"].startswith("vidx")]
    if not vidx or not peers:
        return ["", "(no vidx or no peer results in this directory: no ratio rows)"]
    rhead = [f"QPS 1t @{t:.2f}" for t in TARGETS] + [f"QPS all @{t:.2f}" for t in TARGETS]
    lines = ["", "Ratios (above 1 favours vidx). Best = the best engine of the group at that column, named.", "",
             "| ratio | " + " | ".join(rhead) + " |", "|---|" + "---:|" * len(rhead)]
    inproc = [e for e in vidx if e in VIDX_IN_PROCESS]
    f32 = [e for e in peers if e in F32_PEERS]
    for label, group in (("best f32 peer", f32), ("best peer, any mode", peers)):
        cells = []
        for c in QPS_COLS:
            a, alb, ae = best(ms, inproc, c)
            b, blb, be = best(ms, group, c)
            cells.append(f"{fmt_ratio(a, b, alb, blb)} ({ae} ÷ {be})" if ae and be else "n/a")
        lines.append(f"| vidx best ÷ {label} | " + " | ".join(cells) + " |")
    for grpc, inp in (("vidx-grpc", "vidx-sealed"), ("vidx-grpc-sq8", "vidx-sealed-sq8")):
        if grpc in ms and inp in ms:
            cells = [fmt_ratio(ms[grpc][c][0], ms[inp][c][0], ms[grpc][c][1], ms[inp][c][1])
                     if c.startswith("all") else "" for c in QPS_COLS]
            lines.append(f"| {grpc} batched ÷ {inp} all cores | " + " | ".join(cells) + " |")
    other = []
    if "hnswlib" in ms:
        for e in vidx:
            if e in VIDX_IN_PROCESS:
                what = " (graph only)" if e == "vidx-mutable" else " (graph + seal)"
                other.append(f"| build rate {e}{what} ÷ hnswlib | {fmt_ratio(ms[e]['build'][0], ms['hnswlib']['build'][0])} |")
    if "vidx-sealed" in ms:
        for e in ("vidx-sealed-sq8", "vidx-sealed-sq4", "vidx-sealed-f16", "vidx-sealed-sq8-f16"):
            if e in ms:
                a, b = ms[e]['hot'][0], ms['vidx-sealed']['hot'][0]
                # Three decimals: the goal (≤ 0.3) sits at SQ8's value.
                v = f"{a / b:.3f}" if a is not None and b else "n/a"
                other.append(f"| hot bytes/vector {e} ÷ vidx-sealed (f32) | {v} |")
    if other:
        lines += ["", "| ratio | value |", "|---|---:|"] + other
    rhead2 = rhead + ["build rate", "serving RSS", "hot B/vector", "disk"]
    lines += ["", "Every in-process vidx mode against every peer (QPS and build above 1, memory and disk below 1 favour vidx):", "",
              "| ratio | " + " | ".join(rhead2) + " |", "|---|" + "---:|" * len(rhead2)]
    for v in inproc:
        for p in peers:
            a, b = ms[v], ms[p]
            cells = [fmt_ratio(a[c][0], b[c][0], a[c][1], b[c][1]) for c in QPS_COLS]
            cells += [fmt_ratio(a[c][0], b[c][0]) for c in ("build", "serving", "hot", "disk")]
            lines.append(f"| {v} ÷ {p} | " + " | ".join(cells) + " |")
    return lines


def header(results, cores):
    d = results[0].get("dataset", {})
    p = results[0].get("params", {})
    desc = (f"{d.get('name', '?')}: n={d.get('n', '?')}, dim={d.get('dim', '?')}, {d.get('metric', '?')}, "
            f"{d.get('queries', '?')} queries; M={p.get('m', '?')}, ef_construction={p.get('ef_construction', '?')}, "
            f"k={p.get('k', '?')}; {cores} cores")
    warn = []
    keys = ("name", "n", "dim", "metric", "queries")
    for r in results[1:]:
        rd, rp = r.get("dataset", {}), r.get("params", {})
        if any(rd.get(k) != d.get(k) for k in keys):
            warn.append(f"warning: {r['engine']} ran on a different dataset: {rd}")
        if any(rp.get(k) != p.get(k) for k in ("m", "ef_construction", "k")):
            warn.append(f"warning: {r['engine']} used different parameters: {rp}")
    return desc, warn


def plot(results, png, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 6), dpi=120)
    peer_styles = iter([("tab:blue", "o"), ("tab:orange", "s"), ("tab:green", "^"), ("tab:purple", "v"),
                        ("tab:brown", "P"), ("tab:pink", "X"), ("tab:gray", "D")])
    vidx_styles = iter([("tab:red", "o"), ("darkred", "s"), ("salmon", "^"), ("black", "D"),
                        ("magenta", "P"), ("goldenrod", "X"), ("teal", "h")])
    xs = []
    for r in results:
        pts = sorted((p for p in one_thread_points(r) if p.get("qps_1t")), key=lambda p: p["ef"])
        if not pts:
            continue
        is_vidx = r["engine"].startswith("vidx")
        color, marker = next(vidx_styles if is_vidx else peer_styles, ("gray", "."))
        x = [p["recall"] for p in pts]
        xs += x
        ax.plot(x, [p["qps_1t"] for p in pts], marker=marker, color=color, markersize=4,
                linewidth=2.2 if is_vidx else 1.4, linestyle="-" if is_vidx else "--",
                label=f"{r['engine']} {r.get('version', '')}".strip())
    for t in TARGETS:
        ax.axvline(t, color="lightgray", linewidth=0.8, linestyle=":", zorder=0)
    ax.set_yscale("log")
    if xs:
        lo = min(xs)
        ax.set_xlim(max(0.0, min(lo, 0.9) - 0.01), 1.002)
    k = g(results[0], "params", "k") or 10
    ax.set_xlabel(f"recall@{k}")
    ax.set_ylabel("queries per second, 1 thread (log)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results_dir")
    ap.add_argument("--png", help="write the recall-vs-QPS plot here")
    ap.add_argument("--md", help="also write the table here")
    a = ap.parse_args(argv)
    if not os.path.isdir(a.results_dir):
        ap.error(f"{a.results_dir}: not a directory")
    results = load_results(a.results_dir)
    if not results:
        print(f"{a.results_dir}: no result JSON files", file=sys.stderr)
        return 1
    results.sort(key=engine_order)
    cores = max((g(r, "params", "threads") or 0 for r in results), default=0) or os.cpu_count()
    desc, warn = header(results, cores)
    for w in warn:
        print(w, file=sys.stderr)
    md = f"## {desc}\n\n" + table(results) + "\n"
    if warn:
        md += "\n" + "\n".join(f"> {w}" for w in warn) + "\n"
    sys.stdout.write(md)
    if a.md:
        with open(a.md, "w") as f:
            f.write(md)
    if a.png:
        plot(results, a.png, f"recall vs QPS, 1 thread\n{desc}")
        print(f"wrote {a.png}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Writes tests/data/pdq/: small test pictures and their PDQ hashes from
Meta's reference C++ (PyPI `pdqhash`), for vidx's PDQ conformance test.

    python benches/real/make_pdq_reference.py [--out tests/data/pdq]

For each offline scikit-image sample picture (sources.py) four files:

- `<name>.png`       the picture, lossless; downscaled (Lanczos) only as far
                     as needed for at most 512 px a side and a file under
                     --max-bytes;
- `<name>.crop5.png` that picture with 5% of its width and of its height cut
                     away, half from each side (centre 95% x 95%);
- `<name>.half.png`  that picture rescaled to 50% (Lanczos);
- `<name>.q75.jpg`   that picture re-encoded as JPEG, quality 75 (Pillow).

Grey pictures are stored as 8-bit grey files, colour ones as 8-bit RGB.

Hashes are computed from the committed files themselves, decoded with Pillow
to 8-bit RGB (a grey file gives R = G = B), then `pdqhash.compute`, which
takes luma = 0.299 R + 0.587 G + 0.114 B (float32) and runs Meta's
pdqHash256FromFloatLuma. The hex form is ThreatExchange's: 64 hex digits,
word 15 first, i.e. bit 255 is the most significant bit of the first digit
(`pdqhash` returns the bits in exactly that order).

expected.json also holds the Hamming distances of every variant to its
original and between all pairs of originals; the script prints a summary.
"""

import argparse
import io
import itertools
import json
import os
import sys
from importlib import metadata as pkgmeta

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sources  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Meta's pdq-photo-hasher first squeezes pictures larger than 512 px a side to
# 512x512; pdqhash hashes the full luma. Files of at most 512 px a side give
# the same hash either way.
MAX_SIDE = 512


def png_bytes(im):
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def jpeg_bytes(im, quality):
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def fit(im, max_bytes):
    """The picture as PNG bytes: at most MAX_SIDE px a side, then downscaled
    in 10% steps until the file fits in max_bytes."""
    w, h = im.size
    scale = min(1.0, MAX_SIDE / max(w, h))

    def at(s):
        return im if s == 1.0 else im.resize((max(8, round(w * s)), max(8, round(h * s))), Image.LANCZOS)

    cur = at(scale)
    data = png_bytes(cur)
    while len(data) > max_bytes:
        scale *= 0.9
        cur = at(scale)
        data = png_bytes(cur)
    return cur, data, scale


def variants(base):
    """(suffix, derivation, PIL image, encoder) of the three modifications."""
    w, h = base.size
    dx, dy = round(w * 0.025), round(h * 0.025)
    crop = base.crop((dx, dy, w - dx, h - dy))
    half = base.resize((max(1, round(w / 2)), max(1, round(h / 2))), Image.LANCZOS)
    return [
        ("crop5.png", {"op": "crop", "box": [dx, dy, w - dx, h - dy]}, crop, png_bytes),
        ("half.png", {"op": "rescale", "scale": 0.5, "filter": "lanczos"}, half, png_bytes),
        ("q75.jpg", {"op": "jpeg", "quality": 75}, base, lambda im: jpeg_bytes(im, 75)),
    ]


def pdq_of_file(path):
    """(hex, quality) of a file, decoded as the module docstring says."""
    import pdqhash

    with Image.open(path) as im:
        rgb = np.ascontiguousarray(np.array(im.convert("RGB"), dtype=np.uint8))
    bits, quality = pdqhash.compute(rgb)
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex(), int(quality)


def hamming(a, b):
    return bin(int(a, 16) ^ int(b, 16)).count("1")


def write_files(out, max_bytes):
    """Writes the pictures; returns their entries (without hashes)."""
    srcs, skipped = sources.load()
    entries = []
    for name, arr, _tags in srcs:
        im = Image.fromarray(arr, "L" if arr.ndim == 2 else "RGB")
        base, data, scale = fit(im, max_bytes)
        fname = f"{name}.png"
        with open(os.path.join(out, fname), "wb") as f:
            f.write(data)
        entries.append({"file": fname, "source": name, "derivation": {
            "op": "original", "skimage_size": list(im.size), "stored_size": list(base.size),
            "downscaled": round(scale, 4) if scale < 1.0 else None}})
        for suffix, deriv, pic, enc in variants(base):
            vname = f"{name}.{suffix}"
            with open(os.path.join(out, vname), "wb") as f:
                f.write(enc(pic))
            entries.append({"file": vname, "source": name, "derivation": {**deriv, "of": fname}})
    return entries, skipped


def distances(entries):
    by_file = {e["file"]: e for e in entries}
    variant_d = {}
    for e in entries:
        if e["derivation"]["op"] != "original":
            d = hamming(e["pdq"], by_file[e["derivation"]["of"]]["pdq"])
            e["distance_to_original"] = d
            variant_d.setdefault(e["derivation"]["op"], []).append((d, e["file"]))
    originals = [e for e in entries if e["derivation"]["op"] == "original"]
    pairs = sorted((hamming(a["pdq"], b["pdq"]), a["source"], b["source"])
                   for a, b in itertools.combinations(originals, 2))
    return variant_d, pairs


def summary(variant_d, pairs, entries):
    s = {}
    for op, ds in sorted(variant_d.items()):
        vals = [d for d, _ in ds]
        s[op] = {"max": max(vals), "mean": round(float(np.mean(vals)), 2), "median": float(np.median(vals)),
                 "over_31": [f for d, f in ds if d > 31], "worst": max(ds)[1]}
    vals = [d for d, *_ in pairs]
    s["unrelated_originals"] = {"pairs": len(pairs), "min": min(vals), "median": float(np.median(vals)),
                                "at_or_below_60": [[a, b, d] for d, a, b in pairs if d <= 60]}
    s["quality"] = {"min": min(e["quality"] for e in entries),
                    "below_80": [[e["file"], e["quality"]] for e in entries if e["quality"] < 80]}
    return s


def pdq_of_image(im):
    import pdqhash

    bits, _q = pdqhash.compute(np.ascontiguousarray(np.array(im.convert("RGB"), dtype=np.uint8)))
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex()


def crop_sweep(out, entries):
    """Not written as files: how far centred crops of 1, 2.5 and 5% a side
    and a one-sided 5% crop move the hash, over all committed originals."""
    res = {}
    for e in (e for e in entries if e["derivation"]["op"] == "original"):
        with Image.open(os.path.join(out, e["file"])) as im:
            im.load()
            w, h = im.size
            cuts = {f"centre_{f * 100:g}pct_each_side": (round(w * f), round(h * f), w - round(w * f), h - round(h * f))
                    for f in (0.01, 0.025, 0.05)}
            cuts["bottom_right_5pct"] = (0, 0, w - round(w * 0.05), h - round(h * 0.05))
            for k, box in cuts.items():
                res.setdefault(k, []).append(hamming(pdq_of_image(im.crop(box)), e["pdq"]))
    return {k: {"median": float(np.median(v)), "max": max(v), "within_31": f"{sum(d <= 31 for d in v)}/{len(v)}"}
            for k, v in res.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "data", "pdq"))
    ap.add_argument("--max-bytes", type=int, default=100_000, help="largest PNG of an original")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    entries, skipped = write_files(args.out, args.max_bytes)
    for e in entries:
        path = os.path.join(args.out, e["file"])
        e["bytes"] = os.path.getsize(path)
        e["pdq"], e["quality"] = pdq_of_file(path)
    variant_d, pairs = distances(entries)
    summ = summary(variant_d, pairs, entries)
    summ["crop_sweep"] = crop_sweep(args.out, entries)
    doc = {
        "format": "vidx-pdq-reference/1",
        "command": "python benches/real/make_pdq_reference.py",
        "hasher": {"package": "pdqhash", "version": pkgmeta.version("pdqhash"),
                   "what": "Meta ThreatExchange PDQ C++ (pdqHash256FromFloatLuma) via Cython"},
        "decoding": ("Pillow decode of the committed file, convert('RGB') (grey: R = G = B), uint8; "
                     "luma = 0.299 R + 0.587 G + 0.114 B as float32"),
        "hex": "64 hex digits, ThreatExchange order: bit 255 is the top bit of the first digit",
        "versions": {p: pkgmeta.version(p) for p in ("pdqhash", "pillow", "numpy", "scikit-image")},
        "skipped_sources": [{"name": n, "why": w} for n, w in skipped],
        "summary": summ,
        "unrelated_pairs": [{"a": a, "b": b, "distance": d} for d, a, b in pairs],
        "files": entries,
    }
    with open(os.path.join(args.out, "expected.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(json.dumps(summ, indent=1))
    total = sum(e["bytes"] for e in entries)
    print(f"{len(entries)} files, {total} bytes, largest {max(e['bytes'] for e in entries)} bytes")


if __name__ == "__main__":
    main()

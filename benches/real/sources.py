"""The sample images of scikit-image that load offline, as 8-bit arrays.

Shared by make_real_set.py (embeddings) and make_pdq_reference.py (PDQ
conformance data), so both use the same sources, decoded the same way.

Only images whose file ships inside the installed `skimage/data/` folder are
used: with those, `skimage.data` never reaches the network (the others need
`pooch` and a download, and are left out). The list was checked against
scikit-image 0.26.0; a file that is missing in another version is skipped and
reported, never fetched.
"""

import hashlib
import os

import numpy as np
import skimage
import skimage.data

# name -> (file shipped in skimage/data/, content tags). `cat` is left out: it
# is the same picture as `chelsea` (same file). `lfw_subset` is left out: it
# is a stack of 200 unlabelled 25x25 patches (half faces, half not), not a
# picture. `stereo_motorcycle` gives its left view here; its right view is a
# natural second shot of the same scene (see RIGHT_VIEW).
SHIPPED = {
    "astronaut": ("astronaut.png", ["photo", "person"]),
    "brick": ("brick.png", ["texture"]),
    "camera": ("camera.png", ["photo", "person"]),
    "cell": ("cell.png", ["microscopy"]),
    "checkerboard": ("chessboard_GRAY.png", ["graphic"]),
    "chelsea": ("chelsea.png", ["photo", "animal"]),
    "clock": ("clock_motion.png", ["photo", "object"]),
    "coffee": ("coffee.png", ["photo", "object"]),
    "coins": ("coins.png", ["photo", "object"]),
    "colorwheel": ("color.png", ["graphic"]),
    "grass": ("grass.png", ["texture"]),
    "gravel": ("gravel.png", ["texture"]),
    "horse": ("horse.png", ["graphic", "animal"]),
    "hubble_deep_field": ("hubble_deep_field.jpg", ["astronomy"]),
    "immunohistochemistry": ("ihc.png", ["microscopy"]),
    "logo": ("logo.png", ["graphic"]),
    "microaneurysms": ("microaneurysms.png", ["medical"]),
    "moon": ("moon.png", ["astronomy"]),
    "page": ("page.png", ["document"]),
    "retina": ("retina.jpg", ["medical"]),
    "rocket": ("rocket.jpg", ["photo", "object"]),
    "shepp_logan_phantom": ("phantom.png", ["medical", "graphic"]),
    "stereo_motorcycle": ("motorcycle_left.png", ["photo", "object"]),
    "text": ("text.png", ["document"]),
}
# Procedural, no file: made with a fixed seed so it is the same every run.
BINARY_BLOBS_SEED = 7
RIGHT_VIEW = "stereo_motorcycle"


def data_dir():
    return os.path.dirname(skimage.data.__file__)


def to_uint8(img):
    """Any skimage.data image -> uint8, (H, W) for grey or (H, W, 3) RGB.

    bool -> 0/255; float in [0, 1] -> round(255 x); RGBA -> composited over
    white (the alpha of `logo` is its only transparency)."""
    a = np.asarray(img)
    if a.dtype == bool:
        return np.where(a, 255, 0).astype(np.uint8)
    if a.dtype.kind == "f":
        return np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8)
    a = a.astype(np.uint8)
    if a.ndim == 3 and a.shape[2] == 4:
        alpha = a[..., 3:4].astype(np.float64) / 255.0
        rgb = a[..., :3].astype(np.float64) * alpha + 255.0 * (1.0 - alpha)
        return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    return a


def load(names=None):
    """[(name, uint8 array, tags)], sorted by name, plus [(name, reason)]
    skipped. Duplicate pictures (same pixels) are kept once."""
    out, skipped, seen = [], [], {}
    wanted = sorted(set(SHIPPED) | {"binary_blobs"}) if names is None else names
    for name in wanted:
        if name == "binary_blobs":
            img = skimage.data.binary_blobs(length=512, rng=BINARY_BLOBS_SEED)
            tags = ["graphic"]
        else:
            fname, tags = SHIPPED[name]
            if not os.path.exists(os.path.join(data_dir(), fname)):
                skipped.append((name, f"{fname} not shipped with scikit-image {skimage.__version__}"))
                continue
            img = getattr(skimage.data, name)()
            if name == RIGHT_VIEW:
                img = img[0]
        a = to_uint8(img)
        digest = hashlib.sha1(a.tobytes() + str(a.shape).encode()).hexdigest()
        if digest in seen:
            skipped.append((name, f"same pixels as {seen[digest]}"))
            continue
        seen[digest] = name
        out.append((name, a, list(tags)))
    return out, skipped


def right_view():
    """The right view of stereo_motorcycle, uint8 RGB."""
    return to_uint8(skimage.data.stereo_motorcycle()[1])


def as_rgb(a):
    """Grey (H, W) -> (H, W, 3) with R = G = B; RGB unchanged."""
    return np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else a

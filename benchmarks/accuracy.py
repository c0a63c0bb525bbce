"""How well the pHash finds edited copies of a photo, and how rarely it confuses distinct photos.

    python benchmarks/accuracy.py [FOLDER ...] [--workers 2] [--max-threshold 16]

The photos are scikit-image's bundled ones, or every image under FOLDER (the team's corpus:
shared/photos/build.sh). Each photo gets the TRANSFORMS below; a copy saved lossy (JPEG, WEBP)
or in another format is hashed from its encoded bytes, like an uploaded file; a lossless edit is
hashed as an image (saving it as PNG would give the same pixels). For each threshold t:

- recall: the fraction of copies within t of their own original (per transformation);
- false positives: pairs of distinct originals within t, and copies within t of an original
  other than their own. Mirroring is reported but left out of recall: pHash is not meant to
  match mirror images (a known negative).

Ends with the recommended threshold (the largest with no false positive: recall only grows with
the threshold, so that one maximises it) and a README-ready markdown table.
"""

from __future__ import annotations

import argparse
import io
import os
from multiprocessing import Pool

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFont, ImageOps

from phashdb import hashing
from phashdb.ingest import find_images

SKIMAGE_PHOTOS = [
    "astronaut.png",
    "camera.png",
    "chelsea.png",
    "coffee.png",
    "coins.png",
    "moon.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "hubble_deep_field.jpg",
    "retina.jpg",
    "brick.png",
    "grass.png",
    "gravel.png",
    "page.png",
    "text.png",
]
KNOWN_NEGATIVE = "mirror"


def encoded(img: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def scaled(img: Image.Image, fx: float, fy: float) -> Image.Image:
    return img.resize(
        (max(1, round(img.width * fx)), max(1, round(img.height * fy))), Image.LANCZOS
    )


def cropped(img: Image.Image, fraction: float, *, centred: bool = True) -> Image.Image:
    """`fraction` of each side cut away: half from each edge, or all from the right/bottom."""
    dx, dy = round(img.width * fraction), round(img.height * fraction)
    if centred:
        return img.crop((dx // 2, dy // 2, img.width - (dx - dx // 2), img.height - (dy - dy // 2)))
    return img.crop((0, 0, img.width - dx, img.height - dy))


def overlaid(img: Image.Image) -> Image.Image:
    """A white caption box, a quarter of the width, in the bottom-right corner (a watermark)."""
    out = img.copy()
    w, h = max(1, img.width // 4), max(1, img.height // 12)
    box = (img.width - w - img.width // 40, img.height - h - img.height // 40)
    draw = ImageDraw.Draw(out)
    draw.rectangle((*box, box[0] + w, box[1] + h), fill="white")
    font = ImageFont.load_default(size=max(8, h * 2 // 3))
    draw.text((box[0] + h // 6, box[1] + h // 8), "© phashdb", fill="black", font=font)
    return out


# name -> the edited copy: an image (hashed as is) or bytes (hashed as an uploaded file).
TRANSFORMS = {
    "jpeg q90": lambda im: encoded(im, "JPEG", quality=90),
    "jpeg q70": lambda im: encoded(im, "JPEG", quality=70),
    "jpeg q50": lambda im: encoded(im, "JPEG", quality=50),
    "jpeg q30": lambda im: encoded(im, "JPEG", quality=30),
    "png": lambda im: encoded(im, "PNG", compress_level=1),
    "webp q80": lambda im: encoded(im, "WEBP", quality=80),
    "resize 50%": lambda im: scaled(im, 0.5, 0.5),
    "resize 25%": lambda im: scaled(im, 0.25, 0.25),
    "resize 200%": lambda im: scaled(im, 2, 2),
    "aspect 130% wide": lambda im: scaled(im, 1.3, 1),
    "crop 5%": lambda im: cropped(im, 0.05),
    "crop 10%": lambda im: cropped(im, 0.10),
    "crop 10% one corner": lambda im: cropped(im, 0.10, centred=False),
    "brightness +20%": lambda im: ImageEnhance.Brightness(im).enhance(1.2),
    "brightness -20%": lambda im: ImageEnhance.Brightness(im).enhance(0.8),
    "contrast +30%": lambda im: ImageEnhance.Contrast(im).enhance(1.3),
    "contrast -30%": lambda im: ImageEnhance.Contrast(im).enhance(0.7),
    "greyscale": lambda im: im.convert("L"),
    "caption box": overlaid,
    "rotate 2°": lambda im: im.rotate(2, Image.BICUBIC),
    "rotate 3°": lambda im: im.rotate(3, Image.BICUBIC),
    "resize 50% + jpeg q70": lambda im: encoded(scaled(im, 0.5, 0.5), "JPEG", quality=70),
    KNOWN_NEGATIVE: lambda im: ImageOps.mirror(im),
}


def find_photos(folders: list[str]) -> list[str]:
    """The photo files under `folders`, or scikit-image's bundled photos when there are none."""
    if folders:
        return find_images(folders)
    import skimage.data

    here = os.path.dirname(skimage.data.__file__)
    return [os.path.join(here, name) for name in SKIMAGE_PHOTOS]


def upright_rgb(path: str) -> Image.Image:
    """The photo as phashdb sees it before greyscale: oriented, transparency on white."""
    with Image.open(path) as img:
        img = ImageOps.exif_transpose(img)
        if img.has_transparency_data:
            rgba = img.convert("RGBA")
            img = Image.new("RGB", img.size, hashing.BACKGROUND)
            img.paste(rgba, mask=rgba.getchannel("A"))
        return img.convert("RGB")


def hash_photo(path: str) -> list[int]:
    """The hash of the photo, then of each of its TRANSFORMS, in order."""
    img = upright_rgb(path)
    return [hashing.hash_image(path)] + [hashing.hash_image(t(img)) for t in TRANSFORMS.values()]


def short(path: str) -> str:
    return os.path.join(os.path.basename(os.path.dirname(path)), os.path.basename(path))


def within(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distances between uint64 arrays `a` and `b` (broadcast)."""
    return np.bitwise_count(np.bitwise_xor(a, b))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", help="folders of photos (default: scikit-image's)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-threshold", type=int, default=16)
    args = parser.parse_args()
    photos = find_photos(args.folders)
    with Pool(args.workers) as pool:
        hashes = np.array(pool.map(hash_photo, photos, chunksize=2), dtype=np.uint64)
    n, names = len(photos), list(TRANSFORMS)
    originals, copies = hashes[:, 0], hashes[:, 1:]
    own = within(copies, originals[:, None])  # (n, transforms)
    pairs = within(originals[:, None], originals[None, :])[np.triu_indices(n, 1)]
    positive = [i for i, name in enumerate(names) if name != KNOWN_NEGATIVE]
    # each copy against every original: (photo, transform, other photo); its own never counts
    cross = within(copies[:, positive, None], originals[None, None, :])
    cross[np.arange(n), :, np.arange(n)] = 65
    cross_pairs = n * len(positive) * (n - 1)
    thresholds = range(args.max_threshold + 1)

    print(
        f"{n} photos, {len(names)} transformations, {len(pairs)} pairs of distinct photos, "
        f"{cross_pairs} copy-vs-other-original pairs"
    )
    print(
        f"distinct photos: min distance {pairs.min()}, mean {pairs.mean():.1f}; "
        f"copies vs other originals: min {cross.min()}. Closest of these:"
    )
    for flat in np.argsort(cross, axis=None)[:5]:
        i, j, k = np.unravel_index(flat, cross.shape)
        print(
            f"  {cross[i, j, k]:2d}  {short(photos[i])} [{names[positive[j]]}] ~ {short(photos[k])}"
        )
    shown = [t for t in thresholds if t % 2 == 0 or t == args.max_threshold]
    print("\nrecall (fraction of copies within t of their original)")
    print(f"{'transformation':24} {'mean':>5} {'max':>4}  " + " ".join(f"t={t:<3}" for t in shown))
    for i, name in enumerate(names):
        d = own[:, i]
        cells = " ".join(f"{(d <= t).mean():5.3f}" for t in shown)
        print(f"{name:24} {d.mean():5.2f} {d.max():4d}  {cells}")

    print("\nfalse positives: pairs within t; per query in a 1M-image index = rate x 1e6")
    print("t   recall  distinct pairs (rate)   copy vs other original (rate)   per query in 1M")
    recall = {t: (own[:, positive] <= t).mean() for t in thresholds}
    fp = {t: (int((pairs <= t).sum()), int((cross <= t).sum())) for t in thresholds}
    for t in thresholds:
        a, b = fp[t]
        rate = (a + b) / (len(pairs) + cross_pairs)
        print(
            f"{t:<3} {recall[t]:6.3f}  {a:6d} ({a / len(pairs):.1e})   "
            f"{b:10d} ({b / cross_pairs:.1e})          {rate * 1e6:8.2f}"
        )
    # Each hash has exactly 32 one-bits (half the coefficients lie above their median), so
    # distances are even and an odd threshold finds what the even one below it finds.
    best = max((t for t in thresholds if fp[t] == (0, 0) and t % 2 == 0), default=0)
    print(
        f"\nRecommended threshold: {best}, the largest with no false positive "
        f"(recall {recall[best]:.1%}); distances are even, so {best + 1} is the same."
    )
    if best + 2 in thresholds:
        print(
            f"{best + 2} would find {recall[best + 2] - recall[best]:+.1%} of the copies "
            f"at {sum(fp[best + 2])} false positive(s)."
        )
    if args.folders:
        print(
            "Caveat: shared/photos/build.sh keeps no two photos closer than 14, so its "
            "distinct pairs cannot fall under 14: the copies-vs-other-originals column is the "
            "one that tests the threshold."
        )
    print()

    readme = [t for t in (4, 6, 8, 10, 12, 14) if t <= args.max_threshold]
    print(
        "| transformation | mean distance | " + " | ".join(f"recall t={t}" for t in readme) + " |"
    )
    print("|---|---|" + "---|" * len(readme))
    for i, name in enumerate(names):
        d = own[:, i]
        note = " (known negative)" if name == KNOWN_NEGATIVE else ""
        cells = " | ".join(f"{(d <= t).mean():.1%}" for t in readme)
        print(f"| {name}{note} | {d.mean():.1f} | {cells} |")
    print("| **all but mirror** | | " + " | ".join(f"**{recall[t]:.1%}**" for t in readme) + " |")
    print(
        "| false positives (distinct pairs, copy vs other) | | "
        + " | ".join(f"{fp[t][0]}, {fp[t][1]}" for t in readme)
        + " |"
    )


if __name__ == "__main__":
    main()

"""How far JPEG draft-mode (reduced-scale) decoding moves the pHash, and what it saves.

    python benchmarks/draft_check.py [FOLDER ...] [--workers 2] [--timed 12]

For each real photo (scikit-image's bundled ones, or every image under FOLDER) two JPEGs are
made: the photo as it is (re-encoded at quality 90 unless it already is a JPEG) and the photo
upscaled to about 12 megapixels (quality 90, a camera-sized file). Each is hashed from a full
decode (what imagehash sees) and with each candidate draft request, and the Hamming distance
between the two is summarised per candidate; the decode-and-hash time of the large JPEGs is
measured for the first --timed photos, one process at a time (best of 3). phashdb uses the row marked '*'.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from multiprocessing import Pool

import imagehash
from accuracy import find_photos
from PIL import Image

from phashdb import phash as hashing

# (mode, request size): mode "L" decodes the luma channel only; the size is the smallest the
# decoder may go to (libjpeg scales by 1/2, 1/4 or 1/8 while both sides stay at least that).
CANDIDATES = [(None, None), ("L", None)] + [
    (mode, (n, n)) for mode in (None, "L") for n in (32, 64, 128, 256, 384, 512, 768)
]
LARGE_PIXELS = 12_000_000


def hash_jpeg(data: bytes, mode: str | None, size: tuple[int, int] | None) -> int:
    """The pHash of JPEG `data` decoded with draft(mode, size); (None, None) is a full decode."""
    img = Image.open(io.BytesIO(data))
    if mode or size:
        img.draft(mode, size)
    return hashing.hash_image(img)  # a PIL image is hashed as given: no draft of phashdb's own


def jpegs(path: str) -> tuple[bytes, bytes]:
    """The photo at `path` as a JPEG of its own size and as a ~12-megapixel JPEG."""
    with Image.open(path) as img:
        fmt = img.format
        img = img.convert("RGB")
    if fmt == "JPEG":
        with open(path, "rb") as f:
            small = f.read()
    else:
        small = encode(img)
    scale = (LARGE_PIXELS / (img.width * img.height)) ** 0.5
    large = img.resize((round(img.width * scale), round(img.height * scale)), Image.BICUBIC)
    return small, encode(large)


def encode(img: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def distances(path: str) -> tuple[list[tuple[int, int]], int]:
    """Per candidate, (distance on the photo's own JPEG, distance on the 12-megapixel one); and
    how many of the two full decodes imagehash hashes differently (it must be none)."""
    small, large = jpegs(path)
    full = hash_jpeg(small, None, None), hash_jpeg(large, None, None)
    # The library's own path must be the starred candidate, or this measures the wrong thing.
    chosen = hash_jpeg(small, hashing.DRAFT_MODE, hashing.DRAFT_SIZE)
    assert hashing.hash_image(small) == chosen, path
    differ = sum(
        str(imagehash.phash(Image.open(io.BytesIO(data)))) != hashing.to_hex(h)
        for data, h in zip((small, large), full)
    )
    rows = [
        tuple((hash_jpeg(data, *c) ^ f).bit_count() for data, f in zip((small, large), full))
        for c in CANDIDATES
    ]
    return rows, differ


def seconds(data: bytes, candidate, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        hash_jpeg(data, *candidate)
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", help="folders of photos (default: scikit-image's)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timed", type=int, default=12, help="photos whose large JPEG is timed")
    args = parser.parse_args()
    photos = find_photos(args.folders)
    with Pool(args.workers) as pool:
        rows, differ = zip(*pool.map(distances, photos, chunksize=4))
    times = {c: ([], []) for c in CANDIDATES}  # (own JPEG, 12-Mpx JPEG) seconds
    for path in photos[: args.timed]:
        for which, data in enumerate(jpegs(path)):
            for c in CANDIDATES:
                times[c][which].append(seconds(data, c))
    base = [statistics.median(t) for t in times[(None, None)]]
    print(f"{len(photos)} photos; times: median over the first {args.timed} photos' JPEGs")
    print(f"full decodes hashed unlike imagehash.phash: {sum(differ)} of {2 * len(photos)}\n")
    print(
        "| draft(mode, size) | own JPEG: max / mean / >2 | 12-Mpx: max / mean / >2 "
        "| time own JPEG | time 12-Mpx |"
    )
    print("|---|---|---|---|---|")
    for i, c in enumerate(CANDIDATES):
        mark = " *" if c == (hashing.DRAFT_MODE, hashing.DRAFT_SIZE) else ""
        cells = []
        for which in (0, 1):
            d = [row[i][which] for row in rows]
            cells.append(f"{max(d)} / {statistics.mean(d):.2f} / {sum(x > 2 for x in d)}")
        for which in (0, 1):
            t = statistics.median(times[c][which])
            cells.append(f"{t * 1000:.1f} ms ({base[which] / t:.1f}x)")
        print(f"| {c[0]}, {c[1]}{mark} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

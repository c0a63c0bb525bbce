"""Make the 12-megapixel set of benchmarks/peers.py: N distinct originals, each with a copy.

    python benchmarks/large_set.py PHOTOS_DIR OUT_DIR COUNT

Original n is photo n upscaled to 4000x3000 (3000x4000 for a portrait) while there are photos;
beyond them, a collage of four different photos in a 2x2 grid (each a 2000x1500 centre crop),
so COUNT may exceed the photos (1,000 from 231). Each original gets a planted copy at 1600 px.
The originals must not be near-duplicates of each other (a collage shares at most a quarter with
any other): the finished set is ingested into a throwaway index and every `dedupe` group must
hold one original; a collage that lands in another's group is drawn again (other photos).
The copies are listed in OUT_DIR/../<name>.planted.json (copy -> original), written last.
Deterministic: the same inputs give the same files.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from small_sets import photos, scaled  # noqa: E402

WIDTH, HEIGHT = 4000, 3000
PHASHDB = str(Path(sys.executable).with_name("phashdb"))


def upscaled(path: Path) -> Image.Image:
    img = Image.open(path).convert("RGB")
    size = (WIDTH, HEIGHT) if img.width >= img.height else (HEIGHT, WIDTH)
    return img.resize(size, Image.Resampling.BICUBIC)


def tile(path: Path, width: int, height: int) -> Image.Image:
    """The largest centre crop of the photo with the tile's aspect, resized to the tile."""
    img = Image.open(path).convert("RGB")
    scale = min(img.width / width, img.height / height)
    w, h = round(width * scale), round(height * scale)
    left, top = (img.width - w) // 2, (img.height - h) // 2
    return img.resize((width, height), Image.Resampling.BICUBIC, box=(left, top, left + w, top + h))


def collage(sources: list[Path], seed: int) -> Image.Image:
    w, h = WIDTH // 2, HEIGHT // 2
    out = Image.new("RGB", (WIDTH, HEIGHT))
    for k, path in enumerate(random.Random(seed).sample(sources, 4)):
        out.paste(tile(path, w, h), ((k % 2) * w, (k // 2) * h))
    return out


def write(img: Image.Image, out: Path, n: int) -> tuple[str, str]:
    original, copy = out / f"L{n:04d}.jpg", out / f"L{n:04d}-copy.jpg"
    img.save(original, quality=90)
    scaled(img, 1600).save(copy, quality=80)
    return str(copy), str(original)


def clashes(folder: Path) -> set[int]:
    """Originals (by number) found in the group of an earlier original, by phashdb dedupe."""
    index = Path(tempfile.mkdtemp(prefix="phashdb-large-check-"))
    env = {**os.environ, "PHASHDB_URL": str(index / "db")}
    try:
        script = f"{PHASHDB} -q ingest {folder} >/dev/null && {PHASHDB} dedupe --json"
        done = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True)
        if done.returncode not in (0, 1):
            raise SystemExit(f"phashdb failed on {folder}: {done.stderr[-500:]}")
    finally:
        shutil.rmtree(index, ignore_errors=True)
    later = set()
    for group in json.loads(done.stdout):
        numbers = sorted(
            int(Path(i["path"]).stem[1:]) for i in group["images"] if "-copy" not in i["path"]
        )
        later.update(numbers[1:])
    return later


def make(source: Path, out: Path, count: int, *, tries: int = 4) -> dict[str, str]:
    out.mkdir(parents=True, exist_ok=True)
    listed = photos(source)
    planted = {}
    for n in range(count):
        img = upscaled(listed[n]) if n < len(listed) else collage(listed, n)
        planted.update([write(img, out, n)])
    for attempt in range(1, tries + 1):
        again = clashes(out)
        if not again:
            return planted
        if any(n < len(listed) for n in again):
            raise SystemExit(f"photos {sorted(again)} are near-duplicates of other photos")
        print(f"{len(again)} collages near another original, drawn again", file=sys.stderr)
        for n in again:
            write(collage(listed, n + 100_000 * attempt), out, n)
    raise SystemExit(f"{out}: originals still near each other after {tries} draws")


if __name__ == "__main__":
    source, out, count = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    planted = make(source, out, count)
    out.with_name(out.name + ".planted.json").write_text(json.dumps(planted, indent=1))
    print(f"{out}: {count} originals, each with a copy")

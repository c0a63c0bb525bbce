"""Make the small-photo sets of benchmarks/peers.py: real photos (<= 1920 px) and planted copies.

    python benchmarks/small_sets.py PHOTOS_DIR OUT_DIR COUNT

Each photo is written once as a JPEG of at most 1920 pixels a side, then copies are planted
(smaller sizes, other JPEG qualities, PNG) round-robin over the photos until COUNT files exist.
The planted copies are listed in OUT_DIR/../<name>.planted.json (copy -> original) so a run's
recall can be counted. Deterministic: the same inputs give the same files.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from PIL import Image

SIDE = 1920
# (longest side, format, JPEG quality) of each planted copy, in the order they are planted.
COPIES = [(1280, "JPEG", 80), (800, "JPEG", 70), (640, "PNG", None), (1024, "JPEG", 60),
          (480, "JPEG", 85)]  # fmt: skip


def photos(folder: Path) -> list[Path]:
    suffixes = {".jpg", ".jpeg", ".png", ".webp"}
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in suffixes)


def scaled(img: Image.Image, side: int) -> Image.Image:
    img = img.convert("RGB")
    ratio = side / max(img.size)
    if ratio >= 1:
        return img
    return img.resize((max(1, round(img.width * ratio)), max(1, round(img.height * ratio))),
                      Image.Resampling.LANCZOS)  # fmt: skip


def save(img: Image.Image, path: Path, fmt: str, quality: int | None) -> None:
    img.save(path, fmt, **({"quality": quality} if quality else {}))


def make(source: Path, out: Path, count: int) -> dict[str, str]:
    out.mkdir(parents=True, exist_ok=True)
    originals, planted = [], {}
    for n, path in enumerate(photos(source)[:count]):
        target = out / f"p{n:04d}.jpg"
        save(scaled(Image.open(path), SIDE), target, "JPEG", 90)
        originals.append(target)
    round_, made = 0, len(originals)
    while made < count:
        side, fmt, quality = COPIES[round_ % len(COPIES)]
        for original in originals:
            if made >= count:
                break
            suffix = ".png" if fmt == "PNG" else ".jpg"
            target = out / f"{original.stem}-c{round_}{suffix}"
            save(scaled(Image.open(original), side), target, fmt, quality)
            planted[str(target)] = str(original)
            made += 1
        round_ += 1
    return planted


if __name__ == "__main__":
    source, out, count = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    planted = make(source, out, count)
    out.with_name(out.name + ".planted.json").write_text(json.dumps(planted, indent=1))
    print(f"{out}: {count} files, {len(planted)} planted copies")

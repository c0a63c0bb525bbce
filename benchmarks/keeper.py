"""Which keeper rule keeps the original: original/copy pairs made from real photos, each judged
by every rule of phashdb.keep (the former default `pixels`, the default `best`, and each
`--keep` choice).

    python benchmarks/keeper.py [FOLDER] [--photos 40] [--out NEW_FOLDER]

FOLDER holds the photos (default: $PHASHDB_PHOTOS, else var/photos/photos: build it with
../shared/photos/build.sh var/photos). Each photo becomes an original as a camera leaves it: a JPEG with
camera EXIF (make, model, capture time, the pixel size) and an old modification time. Each kind
of copy below is made from it as the usual tools make them (an editor or converter keeps the
EXIF it read, so only screenshots and stripped copies lose it) and saved later (a newer
modification time). Two harder situations follow: the copy's modification time set back to the
original's (`cp -p`, `rsync -a`, `touch -r`), and the original's moved forward (the library
copied to a new disk without keeping times, after the copies were made).

Prints, per situation, a table: per kind of copy, how often each rule keeps the original.
The pair's files are named so that neither comes first by name more often (ids are paths).
"""

from __future__ import annotations

import argparse
import io
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from phashdb import keep
from phashdb.ingest import find_images
from phashdb.records import Image as Record

DEFAULT_PHOTOS = os.environ.get("PHASHDB_PHOTOS", "var/photos/photos")
CAMERAS = [("Canon", "Canon EOS 80D"), ("NIKON CORPORATION", "NIKON D750"),
           ("Apple", "iPhone 12"), ("SONY", "ILCE-7M3"), ("FUJIFILM", "X-T30")]  # fmt: skip
SHOT = time.mktime((2019, 6, 1, 12, 0, 0, 0, 0, -1))  # when the originals were taken and saved
LATER = 86_400 * 400  # copies are made about a year later
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"


def camera_exif(n: int, img: Image.Image) -> Image.Exif:
    make, model = CAMERAS[n % len(CAMERAS)]
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0131] = make, model, "Firmware 1.0"
    taken = time.strftime("%Y:%m:%d %H:%M:%S", time.localtime(SHOT + n * 3600))
    exif[0x0132] = taken
    sub = exif.get_ifd(0x8769)
    sub[0x9003] = sub[0x9004] = taken
    sub[0xA002], sub[0xA003] = img.size
    return exif


def _text(img: Image.Image, text: str, *, bar: bool) -> Image.Image:
    out = img.convert("RGBA")
    layer = Image.new("RGBA", out.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    size = max(12, out.height // 12)
    font = ImageFont.truetype(FONT, size) if os.path.exists(FONT) else ImageFont.load_default()
    if bar:  # a caption: an opaque bar along the bottom, text in it
        draw.rectangle((0, out.height - size * 2, out.width, out.height), fill=(0, 0, 0, 255))
        draw.text((size // 2, out.height - size * 1.6), text, font=font, fill=(255, 255, 255, 255))
    else:  # a watermark: translucent text across the middle
        draw.text((out.width // 10, out.height // 2 - size), text, font=font,
                  fill=(255, 255, 255, 110))  # fmt: skip
    return Image.alpha_composite(out, layer).convert("RGB")


def _scaled(img: Image.Image, f: float) -> Image.Image:
    return img.resize((max(1, round(img.width * f)), max(1, round(img.height * f))), Image.LANCZOS)


def _crop(img: Image.Image) -> Image.Image:
    dx, dy = img.width // 20, img.height // 20
    return img.crop((dx, dy, img.width - dx, img.height - dy))


def _strip(data: bytes) -> bytes:
    """The JPEG without its EXIF segment (APP1), the pixels untouched: `exiftool -all=`."""
    out, i = bytearray(data[:2]), 2
    while i < len(data) and data[i] == 0xFF and data[i + 1] not in (0xDA, 0xD9):
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if data[i + 1] != 0xE1:
            out += data[i : i + 2 + length]
        i += 2 + length
    return bytes(out + data[i:])


# Kind -> (how the copy is made from the original picture and its bytes, the format saved).
# Each returns the copy's picture (or its bytes) and whether the original EXIF goes with it.
KINDS = {
    "re-encoded q95 (larger file)": (lambda img, raw: (img, True), "JPEG", 95),
    "re-encoded q60": (lambda img, raw: (img, True), "JPEG", 60),
    "caption burned in": (
        lambda img, raw: (_text(img, "Holiday 2024", bar=True), True),
        "JPEG",
        95,
    ),
    "watermark burned in": (
        lambda img, raw: (_text(img, "do not share", bar=False), True),
        "JPEG",
        92,
    ),
    "resized up 150%": (lambda img, raw: (_scaled(img, 1.5), True), "JPEG", 90),
    "resized down 50%": (lambda img, raw: (_scaled(img, 0.5), True), "JPEG", 90),
    "cropped 5% a side": (lambda img, raw: (_crop(img), True), "JPEG", 92),
    "screenshot (PNG, scaled 80%)": (lambda img, raw: (_scaled(img, 0.8), False), "PNG", None),
    "converted to PNG": (lambda img, raw: (img, True), "PNG", None),
    "converted to WEBP": (lambda img, raw: (img, True), "WEBP", 90),
    "EXIF stripped": (lambda img, raw: (_strip(raw), False), "JPEG", None),
    "copy made later": (lambda img, raw: (raw, True), "JPEG", None),
}
SITUATIONS = {
    "copies made later (newer mtime)": (0, LATER),
    "copy's mtime set to the original's (cp -p, rsync -a)": (0, 0),
    "original's mtime moved after the copy's (library copied to a new disk)": (2 * LATER, LATER),
}


def make_original(src: Path, n: int, out: Path) -> tuple[Image.Image, bytes, Image.Exif]:
    with Image.open(src) as img:
        img.load()
        if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
            flat = Image.new("RGB", img.size, "white")
            flat.paste(img.convert("RGBA"), mask=img.convert("RGBA").getchannel("A"))
            img = flat
        img = img.convert("RGB")
    exif = camera_exif(n, img)
    buffer = io.BytesIO()
    img.save(buffer, "JPEG", quality=88, exif=exif)
    out.write_bytes(buffer.getvalue())
    return img, buffer.getvalue(), exif


def make_copy(kind: str, img, raw: bytes, exif, path: Path) -> None:
    made, fmt, quality = KINDS[kind]
    pic, with_exif = made(img, raw)
    if isinstance(pic, bytes):
        path.write_bytes(pic)
        return
    options = {"quality": quality} if quality else {}
    if with_exif:
        options["exif"] = exif
    pic.save(path, fmt, **options)


def record(path: Path, mtime: float) -> Record:
    os.utime(path, (mtime, mtime))
    with Image.open(path) as img:
        width, height = img.size
    st = path.stat()
    return Record(str(path), 0, str(path), st.st_size, st.st_mtime, width, height, added=1.0)


def evaluate(photos: list[Path], out: Path) -> dict:
    """{situation: {kind: {rule: originals kept}}}."""
    counts = {s: {k: dict.fromkeys(keep.KEEP_RULES, 0) for k in KINDS} for s in SITUATIONS}
    for n, src in enumerate(photos):
        folder = out / f"{n:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        img, raw, exif = make_original(src, n, folder / "IMG_0001.JPG")
        for k, kind in enumerate(KINDS):
            fmt = KINDS[kind][1].lower().replace("jpeg", "jpg")
            # Half the copies sort before the original by name, half after.
            name = f"{'A' if (n + k) % 2 else 'Z'}-copy-{k:02d}.{fmt}"
            make_copy(kind, img, raw, exif, folder / name)
        for situation, (original_at, copy_at) in SITUATIONS.items():
            for k, kind in enumerate(KINDS):
                if kind == "copy made later" and original_at == copy_at == 0:
                    continue  # the same bytes and time: nothing tells them apart, nor need it
                copy = next(folder.glob(f"?-copy-{k:02d}.*"))
                original = record(folder / "IMG_0001.JPG", SHOT + original_at)
                copied = record(copy, SHOT + copy_at)
                for rule in keep.KEEP_RULES:
                    kept = keep.plan([original, copied], rule).keeper
                    counts[situation][kind][rule] += kept.id == original.id
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", nargs="?", default=DEFAULT_PHOTOS)
    parser.add_argument("--photos", type=int, default=40, help="how many photos (a seeded sample)")
    parser.add_argument("--out", help="a new folder for the pairs, kept (default: a temporary one)")
    args = parser.parse_args()
    found = sorted(Path(p) for p in find_images([args.folder]))
    photos = random.Random(21).sample(found, min(args.photos, len(found)))
    if args.out:
        out = Path(args.out)
        if out.exists():
            sys.exit(f"keeper.py: {out} exists; name a new folder for the pairs")
        counts = evaluate(photos, out)
    else:
        with tempfile.TemporaryDirectory(prefix="keeper-pairs-") as tmp:
            counts = evaluate(photos, Path(tmp))
    rules = ["pixels", "best", *(r for r in keep.KEEP_RULES if r not in ("pixels", "best"))]
    print(f"{len(photos)} photos from {args.folder}; originals kept, per rule "
          "(pixels: the former default; best: the default)")  # fmt: skip
    for situation, kinds in counts.items():
        print(f"\n### {situation}\n")
        print("| copy | " + " | ".join(rules) + " |")
        print("|---|" + "---:|" * len(rules))
        for kind, kept in kinds.items():
            if kind == "copy made later" and situation.startswith("copy's mtime"):
                continue
            cells = [f"{100 * kept[r] / len(photos):.0f}%" for r in rules]
            print(f"| {kind} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

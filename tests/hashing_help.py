"""What the hashing and descriptor tests share: encoding an image (as JPEG, as PNG), imagehash's
pHash as an int, the distance of two hashes."""

from __future__ import annotations

import io

import imagehash
from PIL import Image


def encode(img: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def jpeg(img: Image.Image, **options) -> bytes:
    return encode(img.convert("RGB"), "JPEG", **{"quality": 85, **options})


def png(img: Image.Image) -> bytes:
    return encode(img, "PNG")


def imagehash_phash(img: Image.Image) -> int:
    return int(str(imagehash.phash(img)), 16)


def distance(a: int, b: int) -> int:
    return (a ^ b).bit_count()

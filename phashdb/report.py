"""The duplicate report: one self-contained HTML page of every duplicate group.

Thumbnails are embedded as data: URIs so the page needs nothing else at view time (no network,
no access to the photos); the keeper and the bytes freed come from `phashdb.keep`, the same
rule `dedupe --apply` follows.
"""

from __future__ import annotations

import base64
import io
import os
import struct
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

from PIL import Image as PILImage
from PIL import ImageOps

from .errors import ImageError
from .keep import BEST, Plan, plans
from .pages import render

THUMB_SIZE = 160  # pixels, the longer side
THUMB_QUALITY = 75
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    struct.error,
    PILImage.DecompressionBombError,
)


def thumbnail(path: str | os.PathLike | None, size: int = THUMB_SIZE) -> str | None:
    """A JPEG thumbnail of an image file as a data: URI; None when the file is missing or
    cannot be decoded (the page shows a placeholder instead). Opened as hashing opens files:
    a regular file only (a FIFO at a stored path would block forever), the allowed formats."""
    if not path:
        return None
    from .decode import open_image

    try:
        with ExitStack() as stack:
            img = open_image(path, os.fsdecode(path), stack)
            # JPEG: decode at a reduced scale, several times faster, still sharper than needed.
            img.draft("RGB", (size * 2, size * 2))
            img = ImageOps.exif_transpose(img)
            img.thumbnail((size, size))
            if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
                img = img.convert("RGBA")
                flat = PILImage.new("RGB", img.size, "white")
                flat.paste(img, mask=img.getchannel("A"))
                img = flat
            buffer = io.BytesIO()
            img.convert("RGB").save(buffer, "JPEG", quality=THUMB_QUALITY)
    except (ImageError, *_DECODE_ERRORS):
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def human_bytes(n: int) -> str:
    """1234567 -> '1.2 MB' (decimal units, as file managers show sizes)."""
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def build(
    groups: Iterable,
    *,
    title: str = "phashdb duplicate report",
    source: str = "",
    threshold: int | None = None,
    rule: str = BEST,
    progress: Callable[[int], None] | None = None,
) -> str:
    """The report page for duplicate groups (`Index.dedupe()`), as HTML text. `progress(n)` is
    called as thumbnails are made."""
    ordered = plans(groups, rule)
    images = [i for p in ordered for i, _ in p.roles()]
    # Decoding and resizing release the GIL: threads make thumbnails on all cores.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        thumbs = {}
        for image, thumb in zip(images, pool.map(lambda i: thumbnail(i.path), images)):
            thumbs[image.id] = thumb
            if progress:
                progress(1)
    data = [_group_json(p, thumbs) for p in ordered]
    freed = sum(p.freed for p in ordered)
    return render(
        "report.html",
        title=title,
        source=source,
        threshold=threshold,
        rule=rule,
        generated=time.strftime("%Y-%m-%d %H:%M"),
        groups=len(ordered),
        images=len(images),
        freed=freed,
        freed_text=human_bytes(freed),
        data=data,
    )


def write(path: str | os.PathLike, html: str) -> None:
    """Write the page next to its final name first, so a reader never sees half of it."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(html, encoding="utf-8")
    os.replace(partial, path)


def _group_json(plan: Plan, thumbs: dict[str, str | None]) -> dict:
    roles = plan.roles()
    position = {image.id: n for n, (image, _) in enumerate(roles)}
    # Pairs as (A, B, distance), in the order the images are shown: the keeper is A.
    pairs = sorted(
        (*sorted((position[a], position[b])), d)
        for a, b, d in plan.pairs
        if a in position and b in position
    )
    return {
        "freed": plan.freed,
        "freedText": human_bytes(plan.freed),
        "why": plan.why,
        "images": [
            {
                "label": _label(position[image.id]),
                "path": image.path or image.id,
                "name": os.path.basename(image.path) if image.path else image.id,
                "folder": os.path.dirname(image.path) if image.path else "",
                "size": human_bytes(image.size) if image.size is not None else "size unknown",
                "dims": f"{image.width} × {image.height}" if image.width else "",
                "thumb": thumbs.get(image.id),
                "missing": None if thumbs.get(image.id) else _why_no_thumb(image.path),
                "role": role,
            }
            for image, role in roles
        ],
        "pairs": [[_label(a), _label(b), d] for a, b, d in pairs],
    }


def _why_no_thumb(path: str | None) -> str:
    return "unreadable" if path and os.path.exists(path) else "file missing"


def _label(n: int) -> str:
    """A, B, ..., Z, AA, AB, ...: short names for the images of a group in its distance list."""
    out = ""
    n += 1
    while n:
        n, r = divmod(n - 1, 26)
        out = chr(65 + r) + out
    return out

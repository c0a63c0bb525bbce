"""Which image of a duplicate group to keep, why, and how many bytes removing the others frees.

Written once here so that the report (what it suggests), the review page and `dedupe --apply`
(what it does) can never disagree.

The default rule (`best`) ranks by signals an edited copy cannot gain by being edited: the
camera's EXIF (make or model, in a camera's file format, and the pixel size the camera wrote,
if it wrote one, still the image's own), the earliest EXIF capture time, the most pixels, the earliest modification time.
Not the file size: a copy re-saved at a higher JPEG quality is larger than its original. The
choice was made by measurement on original/copy pairs (benchmarks/keeper.py, docs/keeper.md).
EXIF facts are read from the files when the keeper is chosen (only the header, cheaply): the
keeper is chosen among files that exist, and nothing about them need be stored.
"""

from __future__ import annotations

import functools
import hashlib
import os
import stat
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass

from .records import Image, pair_to_json

BEST = "best"
CAMERA_FORMATS = ("JPEG", "MPO", "HEIF", "TIFF")  # what cameras and phones write (DNG is TIFF)

# A signal: its name (as the reason says it) and a sort key, smaller is better.
Signal = tuple[str, Callable[[Image], object]]


@dataclass(frozen=True)
class Exif:
    """What the keeper rule reads of a file's EXIF: whether a camera wrote it, and when the
    photo was taken ("YYYY:MM:DD HH:MM:SS", as EXIF writes it)."""

    camera: bool = False
    taken: str | None = None


def _pixels(i: Image) -> int:
    return (i.width or 0) * (i.height or 0)


def _first(value: float | None) -> float:
    """Sort key putting unknown times last when the smallest comes first."""
    return float("inf") if value is None else value


def _camera(i: Image) -> int:
    return 0 if exif_of(i).camera else 1


def _taken(i: Image) -> tuple:
    taken = exif_of(i).taken
    return (taken is None, taken or "")


_SIGNALS: dict[str, tuple[Signal, ...]] = {
    BEST: (
        ("camera EXIF", _camera),
        ("taken first", _taken),
        ("most pixels", lambda i: -_pixels(i)),
        ("oldest", lambda i: _first(i.mtime)),
        ("stored first", lambda i: _first(i.added)),
    ),
    # The former default: it kept a copy re-saved at a higher quality over its original.
    "pixels": (
        ("most pixels", lambda i: -_pixels(i)),
        ("largest file", lambda i: -(i.size or 0)),
        ("stored first", lambda i: _first(i.added)),
    ),
    # By the file's modification time when stored: `added` is the same for a whole ingest.
    "oldest": (
        ("oldest", lambda i: _first(i.mtime)),
        ("stored first", lambda i: _first(i.added)),
    ),
    "newest": (
        ("newest", lambda i: -(i.mtime or 0)),
        ("stored last", lambda i: -(i.added or 0)),
    ),
    "largest": (
        ("largest file", lambda i: -(i.size or 0)),
        ("most pixels", lambda i: -_pixels(i)),
        ("stored first", lambda i: _first(i.added)),
    ),
}
KEEP_RULES = tuple(_SIGNALS)


@dataclass(frozen=True)
class Plan:
    """What to do with one duplicate group: keep `keeper`, remove (or link) `rest`; `freed` is
    the bytes that frees. Images already the same file as the keeper (a hard or symbolic link)
    are in `linked`, images whose file is gone (or that came without one) in `missing`: they
    free nothing and need nothing done. `why` says why the keeper was chosen ("most pixels,
    oldest")."""

    keeper: Image
    rest: tuple[Image, ...]
    linked: tuple[Image, ...] = ()
    missing: tuple[Image, ...] = ()
    freed: int = 0
    pairs: tuple[tuple[str, str, int], ...] = ()  # the group's close pairs (id, id, distance)
    why: str = ""

    def roles(self) -> list[tuple[Image, str]]:
        """The group's images in the order shown, the keeper first, each with its role:
        "keep", "remove", "linked" or "missing"."""
        return [(self.keeper, "keep"), *((i, "remove") for i in self.rest),
                *((i, "linked") for i in self.linked), *((i, "missing") for i in self.missing)]  # fmt: skip

    def to_json(self) -> dict:
        """The group as the API shows it (`GET /v1/duplicates`): the keeper and why, the
        group's version (group_version), the bytes freed, the images with their roles and the
        close pairs."""
        roles = self.roles()
        return {
            "keeper": self.keeper.id,
            "why": self.why,
            "version": group_version(i for i, _ in roles),
            "freed": self.freed,
            "images": [{**i.to_json(), "role": role} for i, role in roles],
            "pairs": [pair_to_json(*p) for p in self.pairs],
        }


def group_version(images: Iterable[Image]) -> str:
    """A short token of a group's state: its members' ids, paths, sizes, times and hashes. It
    changes when any member is trashed, removed, replaced or re-ingested (an action on a group
    names the version it was shown: phashdb.serve.actions)."""
    digest = hashlib.sha256()
    for i in sorted(images, key=lambda i: i.id):
        digest.update(repr((i.id, i.path, i.size, i.mtime, i.hash)).encode("utf-8", "replace"))
    return digest.hexdigest()[:16]


def plan(images: Iterable[Image], rule: str = BEST, pairs: Iterable = ()) -> Plan:
    """The plan for one group of near-duplicate images under a keep rule (see KEEP_RULES).
    The keeper is chosen among the images whose files still exist: keeping a file that is gone
    would remove every copy."""
    if rule not in _SIGNALS:
        raise ValueError(f"'rule' must be one of {', '.join(KEEP_RULES)}, got {rule!r}")
    images = list(images)
    if not images:
        raise ValueError("'images' must not be empty")
    present = {i.id for i in images if i.path and os.path.lexists(i.path)}
    signals = _SIGNALS[rule]
    ordered = sorted(
        images, key=lambda i: (i.id not in present, *(key(i) for _, key in signals), i.id)
    )
    keeper, others = ordered[0], ordered[1:]
    missing = tuple(i for i in others if i.id not in present)
    linked = tuple(i for i in others if i.id in present and _same_file(i.path, keeper.path))
    rest = tuple(i for i in others if i.id in present and i not in linked)
    if keeper.id in present and not rest:
        why = "kept: the others are links to it" if linked else "kept: the only file left"
    elif keeper.id in present:
        why = _why(keeper, rest, signals)
    else:
        why = "no file of the group is left" if keeper.path else "stored without files"
    return Plan(keeper, rest, linked, missing, bytes_freed(rest), tuple(pairs), why)


def plans(groups: Iterable, rule: str = BEST) -> list[Plan]:
    """A plan per group (`phashdb.Group` or a sequence of Images), the most bytes freed first."""
    out = [plan(getattr(g, "images", g), rule, getattr(g, "pairs", ())) for g in groups]
    out.sort(key=lambda p: (-p.freed, p.keeper.id))
    return out


def bytes_freed(removed: Iterable[Image]) -> int:
    """The bytes that removing these images' files frees (an unknown size counts as 0)."""
    return sum(i.size or 0 for i in removed)


def exif_of(image: Image) -> Exif:
    """The EXIF facts of an image's file (none for a file that is gone, not a regular file,
    or unreadable). A camera's EXIF counts only while the pixel size it recorded, if any, is
    still the image's: a resized or cropped copy keeps its original's EXIF but not its size."""
    try:
        st = os.stat(image.path) if image.path else None
    except OSError:
        st = None
    if st is None or not stat.S_ISREG(st.st_mode):
        return Exif()
    found = _read_exif(image.path, st.st_size, st.st_mtime_ns)
    if found.camera and found.size and found.size not in _sizes(image):
        return Exif(False, found.taken)
    return Exif(found.camera, found.taken)


@dataclass(frozen=True)
class _Read(Exif):
    size: tuple[int, int] | None = None  # the pixel size EXIF records


def _sizes(image: Image) -> set:
    return {(image.width, image.height), (image.height, image.width)}  # either orientation


# Keyed by the file's size and time too: a file replaced under the same name is read again.
@functools.lru_cache(maxsize=4096)
def _read_exif(path: str, size: int, mtime_ns: int) -> _Read:
    from PIL import Image as PILImage

    from .decode import DECODE_ERRORS, open_image
    from .errors import ImageError

    try:  # opened as hashing opens files: a regular file, without blocking, its formats only
        with ExitStack() as stack:
            img = open_image(path, path, stack)
            tags = img.getexif()
            sub = tags.get_ifd(0x8769)  # the Exif sub-IFD: capture time, pixel size
    except (*DECODE_ERRORS, ImageError, PILImage.DecompressionBombError):
        return _Read()  # a file Pillow cannot parse has no EXIF facts
    # Converted to PNG or WEBP, a photo keeps its EXIF: a camera's is only in a camera's format.
    camera = img.format in CAMERA_FORMATS and bool(
        str(tags.get(0x010F, "")).strip() or str(tags.get(0x0110, "")).strip()
    )
    # When taken (or digitised): not the DateTime tag, which editors set to when they saved.
    taken = str(sub.get(0x9003) or sub.get(0x9004) or "").strip().strip("\0")
    taken = taken if taken[:1].isdigit() and not taken.startswith("0000") else None
    width, height = sub.get(0xA002), sub.get(0xA003)
    known = isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0
    return _Read(camera, taken, (width, height) if known else None)


def _why(keeper: Image, rest: tuple, signals: tuple[Signal, ...]) -> str:
    """The signals that set the keeper apart from each image removed, in the rule's order
    ("kept: camera EXIF, oldest")."""
    used = set()
    for other in rest:
        for name, key in signals:
            if key(keeper) != key(other):
                used.add(name)
                break
        else:
            used.add("equal in every way: first by id")
    names = [name for name, _ in signals if name in used] + sorted(used - {n for n, _ in signals})
    return "kept: " + ", ".join(names)


def _same_file(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    try:
        return os.path.samefile(a, b)
    except OSError:  # a file gone missing is not a link to anything
        return False

"""What the index stores and answers: image records, matches and verdicts."""

from __future__ import annotations

import binascii  # base64's own functions, without its module (~1.5 ms of a `check`)
from dataclasses import dataclass, field, fields

from .hashvalue import to_hex


@dataclass(frozen=True)
class Image:
    """One stored image: its id, 64-bit hash, and what was known of its file when added."""

    id: str
    hash: int
    path: str | None = None
    size: int | None = None  # bytes
    mtime: float | None = None  # the file's modification time, for resumable ingest
    width: int | None = None
    height: int | None = None
    added: float | None = None  # seconds since the epoch
    # The second stage's descriptor (phashdb.descriptor: 329 bytes, 58 more a query key, 26 a
    # window key since layout v4, 49 in indexes made before the variants were stored); None
    # for hashes loaded without it, which are then matched by the plain pHash threshold alone.
    descriptor: bytes | None = field(default=None, repr=False)
    # What identifies the file (phashdb.identity), checked before any action on it; None in
    # records of files made before it was recorded (then size and mtime are checked).
    dev: int | None = field(default=None, repr=False)
    ino: int | None = field(default=None, repr=False)
    mtime_ns: int | None = field(default=None, repr=False)
    digest: str | None = field(default=None, repr=False)  # SHA-256 of the bytes, hex

    def to_json(self) -> dict:
        """The record as the API shows it (`GET /v1/images/{id}`, groups' images): its hash in
        hex, its file's facts; not the descriptor or the file's identity (image_to_json carries
        every field, for the MapReduce jobs)."""
        return {
            "id": self.id, "hash": to_hex(self.hash), "path": self.path, "size": self.size,
            "mtime": self.mtime, "width": self.width, "height": self.height, "added": self.added,
        }  # fmt: skip


def file_fields(image: Image) -> tuple:
    """What resumable ingest compares a file against: (size, mtime, dev, ino, mtime_ns)."""
    return (image.size, image.mtime, image.dev, image.ino, image.mtime_ns)


def image_to_json(image: Image) -> dict:
    """`image` as a JSON object (the MapReduce jobs' records): its fields, the descriptor in
    base64."""
    # Its fields are plain values: asdict's deep copy of each costs ~0.1 ms a record.
    out = {name: getattr(image, name) for name in _IMAGE_FIELDS}
    if image.descriptor is not None:
        out["descriptor"] = binascii.b2a_base64(image.descriptor, newline=False).decode()
    return out


_IMAGE_FIELDS = tuple(f.name for f in fields(Image))


def image_from_json(record: dict) -> Image:
    d = record.get("descriptor")
    return Image(**{**record, "descriptor": None if d is None else binascii.a2b_base64(d)})


@dataclass(frozen=True)
class Match:
    """A stored image close to a query: its id, Hamming distance and stored path; `score` is
    the second stage's (phashdb.confirm.confirms: lower is closer; None when the plain pHash
    threshold decided), `variant` how the query was flipped or rotated from the stored image
    ("as-is", "mirrored", "rotated 90", ...: phashdb.descriptor.VARIANTS), `distance` the
    pHash distance in that variant; `same_file` whether the stored file is the very file
    checked (the same inode: a hard link, or the same file under another name)."""

    id: str
    distance: int
    path: str | None = None
    score: float | None = None
    variant: str = "as-is"
    same_file: bool = False

    def rank(self) -> tuple:
        """Sort key, best match first: the same file, then as-is before flipped or rotated,
        then the second stage's score (closest first; none after any), the distance, the id."""
        return (not self.same_file, self.variant != "as-is", self.score is None,
                self.score or 0.0, self.distance, self.id)  # fmt: skip

    def to_json(self) -> dict:
        """The match as a verdict's JSON lists it (the score to two decimals)."""
        return {
            "id": self.id,
            "path": self.path,
            "distance": self.distance,
            "score": None if self.score is None else round(self.score, 2),
            "variant": self.variant,
            "same_file": self.same_file,
        }


def pair_to_json(a: str, b: str, distance: int) -> dict:
    """A close pair of a group (stored ids `a`, `b` and their pHash distance) as JSON."""
    return {"a": a, "b": b, "distance": distance}


@dataclass(frozen=True)
class Decision:
    """The user's word that images `a` and `b` (ids, a < b) are not duplicates, made at `made`
    (seconds since the epoch)."""

    a: str
    b: str
    made: float

    def to_json(self) -> dict:
        return {"a": self.a, "b": self.b, "made": self.made}


@dataclass(frozen=True)
class Verdict:
    """What the index says of one image: its hash, and the stored images within the threshold."""

    hash: int
    matches: tuple[Match, ...] = ()
    path: str | None = None  # the image checked, when it came from a file
    id: str | None = None  # the id it was (or would be) stored under
    added: bool = False  # whether this call stored it
    threshold: int = field(default=0, compare=False)
    # The record made of the image (with its file's identity): what was or would be stored.
    image: Image | None = field(default=None, compare=False, repr=False)

    @property
    def duplicate(self) -> bool:
        return bool(self.matches)

    @property
    def hex(self) -> str:
        return to_hex(self.hash)

    def to_json(self) -> dict:
        """The documented JSON shape of a verdict (see the README)."""
        return {
            "path": self.path,
            "id": self.id,
            "hash": self.hex,
            "verdict": "duplicate" if self.duplicate else "unique",
            "added": self.added,
            "threshold": self.threshold,
            "matches": [m.to_json() for m in self.matches],
        }

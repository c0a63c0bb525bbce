"""What the index stores and answers: image records, matches and verdicts."""

from __future__ import annotations

import base64
from dataclasses import asdict, dataclass, field

from .hashing import to_hex


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
    # The second stage's descriptor (phashdb.descriptor: 329 bytes, 49 in indexes made before
    # the variants were stored); None for hashes loaded without it,
    # which are then matched by the plain pHash threshold alone.
    descriptor: bytes | None = field(default=None, repr=False)


def image_to_json(image: Image) -> dict:
    """`image` as a JSON object (the MapReduce jobs' records): its fields, the descriptor in
    base64."""
    out = asdict(image)
    if image.descriptor is not None:
        out["descriptor"] = base64.b64encode(image.descriptor).decode()
    return out


def image_from_json(record: dict) -> Image:
    d = record.get("descriptor")
    return Image(**{**record, "descriptor": None if d is None else base64.b64decode(d)})


@dataclass(frozen=True)
class Match:
    """A stored image close to a query: its id, Hamming distance and stored path; `score` is
    the second stage's (phashdb.descriptor.score: lower is closer; None when the plain pHash
    threshold decided), `variant` how the query was flipped or rotated from the stored image
    ("as-is", "mirrored", "rotated 90", ...: phashdb.descriptor.VARIANTS), `distance` the
    pHash distance in that variant."""

    id: str
    distance: int
    path: str | None = None
    score: float | None = None
    variant: str = "as-is"


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
            "matches": [
                {
                    "id": m.id,
                    "path": m.path,
                    "distance": m.distance,
                    "score": None if m.score is None else round(m.score, 2),
                    "variant": m.variant,
                }
                for m in self.matches
            ],
        }

"""What the index stores and answers: image records, matches and verdicts."""

from __future__ import annotations

from dataclasses import dataclass, field

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


@dataclass(frozen=True)
class Match:
    """A stored image close to a query: its id, Hamming distance and stored path."""

    id: str
    distance: int
    path: str | None = None


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
            "matches": [{"id": m.id, "path": m.path, "distance": m.distance} for m in self.matches],
        }

"""Which image of a duplicate group to keep, and how many bytes removing the others frees.

Written once here so that the report (what it suggests) and `dedupe --apply` (what it does)
can never disagree.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .records import Image

# The default: the most pixels carry the most information, then the larger file (less
# compressed), then the image stored first (most likely the original).
BEST = "best"


def _pixels(i: Image) -> int:
    return (i.width or 0) * (i.height or 0)


def _first(value: float | None) -> float:
    """Sort key putting unknown times last when the smallest comes first."""
    return float("inf") if value is None else value


_RULES: dict[str, Callable[[Image], tuple]] = {
    BEST: lambda i: (-_pixels(i), -(i.size or 0), _first(i.added), i.id),
    # By the file's modification time when stored: `added` is the same for a whole ingest.
    "oldest": lambda i: (_first(i.mtime), _first(i.added), i.id),
    "newest": lambda i: (-(i.mtime or 0), -(i.added or 0), i.id),
    "largest": lambda i: (-(i.size or 0), -_pixels(i), _first(i.added), i.id),
}
KEEP_RULES = tuple(_RULES)


@dataclass(frozen=True)
class Plan:
    """What to do with one duplicate group: keep `keeper`, remove (or link) `rest`; `freed` is
    the bytes that frees. Images already the same file as the keeper (a hard or symbolic link)
    are in `linked`, images whose file is gone (or that came without one) in `missing`: they
    free nothing and need nothing done."""

    keeper: Image
    rest: tuple[Image, ...]
    linked: tuple[Image, ...] = ()
    missing: tuple[Image, ...] = ()
    freed: int = 0
    pairs: tuple[tuple[str, str, int], ...] = ()  # the group's close pairs (id, id, distance)


def plan(images: Iterable[Image], rule: str = BEST, pairs: Iterable = ()) -> Plan:
    """The plan for one group of near-duplicate images under a keep rule (see KEEP_RULES).
    The keeper is chosen among the images whose files still exist: keeping a file that is gone
    would remove every copy."""
    if rule not in _RULES:
        raise ValueError(f"'rule' must be one of {', '.join(KEEP_RULES)}, got {rule!r}")
    images = list(images)
    if not images:
        raise ValueError("'images' must not be empty")
    present = {i.id for i in images if i.path and os.path.lexists(i.path)}
    ordered = sorted(images, key=lambda i: (i.id not in present, *_RULES[rule](i)))
    keeper, others = ordered[0], ordered[1:]
    missing = tuple(i for i in others if i.id not in present)
    linked = tuple(i for i in others if i.id in present and _same_file(i.path, keeper.path))
    rest = tuple(i for i in others if i.id in present and i not in linked)
    return Plan(keeper, rest, linked, missing, bytes_freed(rest), tuple(pairs))


def plans(groups: Iterable, rule: str = BEST) -> list[Plan]:
    """A plan per group (`phashdb.Group` or a sequence of Images), the most bytes freed first."""
    out = [plan(getattr(g, "images", g), rule, getattr(g, "pairs", ())) for g in groups]
    out.sort(key=lambda p: (-p.freed, p.keeper.id))
    return out


def bytes_freed(removed: Iterable[Image]) -> int:
    """The bytes that removing these images' files frees (an unknown size counts as 0)."""
    return sum(i.size or 0 for i in removed)


def _same_file(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    try:
        return os.path.samefile(a, b)
    except OSError:  # a file gone missing is not a link to anything
        return False

"""dedupe's groups kept in the index's folder while the index stays the same, so that the daily
re-run over a folder already stored answers without searching again.

Derived data, checked against the truth: the file holds the groups beside the key they were
found under (this file's format, phashdb's version, the index's version, the threshold, reach
and variants in force, the arguments asked); under any other key they are found again and the
file replaced. The index's version changes with every write transaction (images, decisions,
settings), here or in another process. It is read before the search, so groups found while
another process writes are kept under the older version and never served for the newer one.
Only an index with a folder and a version that outlasts the process (the embedded one) keeps
them; elsewhere this is `index.dedupe`.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from .index import Group, Index
from .records import image_from_json, image_to_json

log = logging.getLogger(__name__)

# The layout of the file, and what the groups mean: raise it when dedupe's answer changes for
# the same stored data (groups kept by an older phashdb are then found again).
FORMAT = 1
FILE = "groups.json"


def dedupe(index: Index, threshold: int | None = None, *, reach: int | None = None) -> list[Group]:
    """`index.dedupe(threshold, reach=reach)`, answered from the kept groups when the index has
    not changed since they were found."""
    folder = _folder(index)
    version = index.version() if folder is not None else None
    if version is None:
        return index.dedupe(threshold, reach=reach)
    key = _key(index, version, threshold, reach)
    path = folder / FILE
    kept = _load(path, key)
    if kept is not None:
        return kept
    groups = index.dedupe(threshold, reach=reach)
    _save(path, key, groups)
    return groups


def _folder(index: Index) -> Path | None:
    path = getattr(index.store, "path", None)
    return path if isinstance(path, Path) and path.is_dir() else None


def _key(index: Index, version, threshold: int | None, reach: int | None) -> list:
    from . import __version__

    # Through JSON and back, so that a key read from the file compares equal (tuples -> lists).
    asked = [threshold, reach, index.threshold, index.reach, index.variants]
    return json.loads(json.dumps([FORMAT, __version__, version, asked]))


def _load(path: Path, key: list) -> list[Group] | None:
    try:
        with open(path, encoding="utf-8") as f:
            kept = json.load(f)
        if kept.get("key") != key:
            return None
        return [
            Group(
                tuple(image_from_json(i) for i in g["images"]),
                tuple((a, b, d) for a, b, d in g["pairs"]),
            )
            for g in kept["groups"]
        ]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        # Derived data: a damaged or unreadable file is found again, never trusted.
        log.info("not using the kept groups in %s: %s", path, e)
        return None


def _save(path: Path, key: list, groups: list[Group]) -> None:
    import tempfile  # ~5 ms of imports that a dedupe answered from the file does not need

    kept = {
        "key": key,
        "groups": [
            {"images": [image_to_json(i) for i in g.images], "pairs": [list(p) for p in g.pairs]}
            for g in groups
        ],
    }
    try:  # written aside, then renamed: a reader sees the old file or the new, never half
        fd, aside = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError as e:  # a read-only index answers all the same, without keeping them
        log.info("cannot keep the groups in %s: %s", path, e)
        return
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(kept))  # json.dump encodes in Python, dumps in C: ~3x faster
        os.replace(aside, path)
    except OSError as e:
        log.info("cannot keep the groups in %s: %s", path, e)
        Path(aside).unlink(missing_ok=True)

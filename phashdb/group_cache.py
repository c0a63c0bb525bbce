"""dedupe's groups kept in the index's folder while the index stays the same, so that the daily
re-run over a folder already stored answers without searching again; and its links kept beside
them, so that after a change only the images that changed are searched again.

Derived data, checked against the truth: `groups.json` holds the groups beside the key they were
found under (this file's format, phashdb's version, the index's version, the threshold, reach
and variants in force, the arguments asked); under any other key they are found again and the
file replaced. The index's version changes with every write transaction (images, decisions,
settings), here or in another process. It is read before the search, so groups found while
another process writes are kept under the older version and never served for the newer one.

`links.json` holds every link of the last search (phashdb.grouping: a link depends on its two
images alone) beside a fingerprint of each image searched (its pHash and a digest of its
descriptor), under the same key less the index's version. A dedupe after a change reads every
stored hash and descriptor, drops the links of images gone or changed, searches for the links of
images added or changed (and theirs only) and groups all links under the decisions stored now:
the groups a search of everything finds (tests/test_group_cache.py holds them equal).

Only an index with a folder and a version that outlasts the process (the embedded one) keeps
them; elsewhere this is `index.dedupe`. Deleting either file is always safe.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from . import grouping
from .grouping import Link
from .index import Group, Index

log = logging.getLogger(__name__)

# The layout of the files, and what the groups mean: raise it when dedupe's answer changes for
# the same stored data (groups and links kept by an older phashdb are then found again).
FORMAT = 5  # 4: window keys (phashdb.windows) group re-framed copies; 5: by their compact rule
FILE = "groups.json"
LINKS = "links.json"
TEXT = "dedupe.json"  # the key's line, then `dedupe --json`'s answer


# Keeping dedupe's answer after a write reads every record and searches what changed: done when
# the write made at least half of the index (a first ingest: a few percent of the hashing it
# follows) and the index holds at most this many images; otherwise the next dedupe searches.
REFRESH_MAX_IMAGES = 100_000


def dedupe(index: Index, threshold: int | None = None, *, reach: int | None = None) -> list[Group]:
    """`index.dedupe(threshold, reach=reach)`, answered from the kept groups when the index has
    not changed since they were found, and from the kept links and a search of what changed
    when it has."""
    folder, key = _where(index, threshold, reach)
    if key is None:
        return index.dedupe(threshold, reach=reach)
    kept = _load(folder / FILE, key)
    if kept is not None:
        try:
            return _groups_from_json(index, kept["groups"])
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            log.info("not using the kept groups in %s: %s", folder / FILE, e)
    records = {i.id: i for i in index.store.images()}
    links = _links(index, records, folder / LINKS, key[:-1], threshold, reach)
    groups = index.groups(links, records)  # the records just read: 1,200 not read twice
    kept = {"key": key, "groups": [[[i.id for i in g.images], g.pairs] for g in groups]}
    _save(folder / FILE, json.dumps(kept))
    return groups


def dedupe_json(index: Index, threshold: int | None = None, *, reach: int | None = None) -> str:
    """`dedupe --json`'s answer (`to_json(groups)`), kept beside the groups under the same key:
    a re-run over an unchanged index prints it without reading the groups again (reading and
    writing 1,200 images' records is most of its work)."""
    folder, key = _where(index, threshold, reach)
    if key is None:
        return to_json(index.dedupe(threshold, reach=reach))
    head = json.dumps(key)
    try:
        with open(folder / TEXT, encoding="utf-8") as f:
            if f.readline().rstrip("\n") == head:
                return f.read()
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as e:  # derived data: found again, never trusted
        log.info("not using the kept answer in %s: %s", folder / TEXT, e)
    text = to_json(dedupe(index, threshold, reach=reach))
    _save(folder / TEXT, f"{head}\n{text}")
    return text


def refresh(index: Index, added: int) -> None:
    """Bring what `dedupe --json` keeps for the default settings (its answer, groups and links)
    up to date with the `added` images just written, in the process that wrote them (numpy and
    the index already loaded): the `dedupe --json` after it only reads the kept answer and
    prints it. The very search a dedupe makes (`dedupe_json`), so its answer is the same. Done
    only where it costs a fraction of the write it follows (REFRESH_MAX_IMAGES); an index that
    keeps nothing is left alone (its dedupe searches anyway)."""
    if _where(index, None, None)[1] is None:
        return
    stored = len(index)
    if stored <= REFRESH_MAX_IMAGES and 2 * added >= stored:
        dedupe_json(index)


def to_json(groups: list[Group]) -> str:
    """The groups as `dedupe --json` prints them."""
    return json.dumps([g.to_json() for g in groups])


def _where(index: Index, threshold: int | None, reach: int | None) -> tuple[Path | None, list]:
    """(the index's folder, the key of what is kept for this dedupe) or (None, None)."""
    folder = _folder(index)
    version = index.version() if folder is not None else None
    if version is None:
        return None, None
    return folder, [*_asked(index, threshold, reach), json.loads(json.dumps(version))]


def _links(index: Index, records: dict, path: Path, asked: list, threshold, reach) -> dict:
    """Every link among the images stored now (`records`, by id): the kept ones of images
    unchanged, and a search for those of images added or changed (only then is numpy
    imported: after a removal or a decision, the kept links are grouped again as they are)."""
    prints = {id: _print(i) for id, i in records.items()}
    before, searches, links = _kept_links(path, asked)
    changed = {i for i, p in prints.items() if before.get(i) != p}
    searches = {i: s for i, s in searches.items() if i in prints and i not in changed}
    if links is None:
        links = index.links(_rows(records), threshold, reach=reach)
    else:
        gone = changed | (before.keys() - prints.keys())
        links = {p: k for p, k in links.items() if p[0] not in gone and p[1] not in gone}
        if changed:
            ask = {"touching": changed, "searches": searches}
            links.update(index.links(_rows(records), threshold, reach=reach, **ask))
    for id in changed:  # kept so that the next search of a change is no longer than the change
        image = records[id]
        searches[id] = grouping.search_hashes(image.hash, image.descriptor, index.variants)
    kept = {"prints": prints, "searches": searches, "links": [list(k) for k in links.values()]}
    _save(path, json.dumps({"key": asked, **kept}))
    return links


def _rows(records: dict) -> tuple:
    """`records` (Image by id) as `Index.rows()` gives them: read once, searched as read."""
    import numpy as np

    hashes = np.array([i.hash for i in records.values()], dtype=np.uint64)
    stored = {id: i.descriptor for id, i in records.items() if i.descriptor is not None}
    return list(records), hashes, stored


def _kept_links(path: Path, asked: list) -> tuple[dict, dict, dict | None]:
    """(fingerprints, searches, links by pair) kept under `asked`, or ({}, {}, None)."""
    kept = _load(path, asked)
    if kept is None:
        return {}, {}, None
    try:
        before = {str(i): str(p) for i, p in kept["prints"].items()}
        searches = {str(i): [int(h) for h in s] for i, s in kept["searches"].items()}
        links = {(a, b): Link(a, b, d, s, v) for a, b, d, s, v in kept["links"]}
        return before, searches, links
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        log.info("not using the kept links in %s: %s", path, e)
        return {}, {}, None


def _print(image) -> str:
    """The image's fingerprint: all a link of it depends on (its pHash and descriptor)."""
    import hashlib  # ~3 ms of imports (OpenSSL) a dedupe answered from the files does not need

    if image.descriptor is None:
        return f"{image.hash:016x}"
    return f"{image.hash:016x}{hashlib.blake2b(image.descriptor, digest_size=12).hexdigest()}"


def _folder(index: Index) -> Path | None:
    path = getattr(index.store, "path", None)
    return path if isinstance(path, Path) and path.is_dir() else None


def _asked(index: Index, threshold: int | None, reach: int | None) -> list:
    from . import __version__

    # Through JSON and back, so that a key read from the file compares equal (tuples -> lists).
    asked = [threshold, reach, index.threshold, index.reach, index.variants]
    return json.loads(json.dumps([FORMAT, __version__, asked]))


def _groups_from_json(index: Index, groups: list) -> list[Group]:
    """The kept groups (ids and close pairs) with their images' records as stored: under the
    same version of the index, the records they were found with."""
    records = index.store.find({i for ids, _ in groups for i in ids})
    return [
        Group(tuple(records[i] for i in ids), tuple((a, b, d) for a, b, d in pairs))
        for ids, pairs in groups
    ]


def _load(path: Path, key: list) -> dict | None:
    """The file's content when it was kept under `key`."""
    try:
        with open(path, encoding="utf-8") as f:
            kept = json.load(f)
        return kept if kept.get("key") == key else None
    except FileNotFoundError:
        return None
    except (OSError, ValueError, AttributeError) as e:
        # Derived data: a damaged or unreadable file is found again, never trusted.
        log.info("not using the kept groups in %s: %s", path, e)
        return None


def _save(path: Path, text: str) -> None:
    import tempfile  # ~5 ms of imports that a dedupe answered from the file does not need

    try:  # written aside, then renamed: a reader sees the old file or the new, never half
        fd, aside = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError as e:  # a read-only index answers all the same, without keeping them
        log.info("cannot keep the groups in %s: %s", path, e)
        return
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(aside, path)
    except OSError as e:
        log.info("cannot keep the groups in %s: %s", path, e)
        Path(aside).unlink(missing_ok=True)

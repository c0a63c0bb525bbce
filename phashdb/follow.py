"""Records that follow their files, for `add` and `watch`: a stored file moved or renamed keeps
its record (the path follows it, nothing is trashed), a file put over a stored path replaces
that path's record, and an arrived duplicate is trashed only for a stored image whose file is
still the one recorded (phashdb.identity).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from .identity import changed, followed
from .records import Image, Verdict
from .trash import Trashed, move_to_trash


@dataclass(frozen=True)
class Admitted:
    """What `admit` did with a file: its verdict; `moved_from`, the record that followed it
    (the file is that stored image moved or renamed); `replaced`, the record of another file
    that its path held before (removed)."""

    verdict: Verdict
    moved_from: Image | None = None
    replaced: Image | None = None


def admit(index, path: str, *, keep_duplicate: bool, threshold: int | None = None) -> Admitted:
    """`index.add` of the file at `path`, knowing that files move: a stored record of this
    path whose file is another one now (written over, or another file moved onto its name) is
    replaced; a stored image moved or renamed here is followed, not taken for a duplicate of
    itself. Raises Error when the path is stored and still the file recorded."""
    path = os.path.abspath(path)
    replaced = _forget_replaced(index, path)
    verdict = index.add(path, keep_duplicate=keep_duplicate, threshold=threshold)
    moved = _moved_from(index, verdict)
    if moved is None:
        return Admitted(verdict, None, replaced)
    record = followed(moved, path, os.stat(path))
    if verdict.added and verdict.id != record.id:
        index.remove(verdict.id)
    # The new record first, then the old one out: a crash between leaves both, never neither.
    index.insert([record])
    if record.id != moved.id:
        _move_decisions(index, moved.id, record.id)
        index.remove(moved.id)
    matches = tuple(m for m in verdict.matches if m.id != moved.id)
    verdict = replace(verdict, matches=matches, id=record.id, added=True, image=record)
    return Admitted(verdict, moved, replaced)


def moved(index, source: str, dest: str) -> Image | None:
    """A rename seen as it happened (watch's moved event): the record of `source` follows its
    file to `dest` when `dest` is that very file (same device, inode, size, modification
    time); returns the new record, or None (then `dest` is to be admitted as any arrival)."""
    source, dest = os.path.abspath(source), os.path.abspath(dest)
    record = index.get(source)
    if record is None or record.path != source or record.ino is None:
        return None
    if index.get(dest) is not None or changed(record, dest) is not None:
        return None
    new = followed(record, dest, os.stat(dest))
    index.insert([new])
    if new.id != record.id:
        _move_decisions(index, record.id, new.id)
        index.remove(record.id)
    return new


def trash_duplicate(index, path: str, verdict: Verdict) -> Trashed | str:
    """Move the arrived duplicate at `path` to the trash, unless no stored match's file is
    still the one recorded: a record whose file is gone or changed is never the reason to
    trash another file. Then the file is stored (a duplicate of an image whose file is gone)
    and the reason returned. Raises TrashError (naming the file) when the file is itself one
    of the kept files (a link, a path through a symlinked folder)."""
    records = index.store.find([m.id for m in verdict.matches])
    live = tuple(r for r in records.values() if changed(r, max_pixels=index.max_pixels) is None)
    if not live:
        if verdict.image is not None and not verdict.added:
            index.insert([verdict.image])
        return "kept: every stored image it matches has a file gone or changed since it was stored"
    return move_to_trash(path, index.trash, index=index, keep=live, record=verdict.image)


def _forget_replaced(index, path: str) -> Image | None:
    record = index.get(path)
    if record is None or record.path != path or not os.path.exists(path):
        return None
    if changed(record, max_pixels=index.max_pixels) is None:
        return None  # still the file stored: index.add says it is in the index
    index.remove(record.id)
    # What the user said of the picture that was there is not about the one there now.
    index.forget_decisions([(a, b) for a, b, _ in index.store.decisions([record.id])])
    return record


def _moved_from(index, verdict: Verdict) -> Image | None:
    """The stored image that the verdict's file is, moved or renamed: identical bytes (the
    same digest; without one, an older record: the same hash, size and modification time),
    its recorded file gone or no longer that file."""
    image = verdict.image
    if image is None or image.path is None:
        return None
    same_hash = [m.id for m in verdict.matches if m.distance == 0 and m.variant == "as-is"]
    for record in index.store.find(same_hash).values():
        if record.path == image.path or record.hash != image.hash:
            continue
        if record.digest is not None:
            same = record.digest == image.digest
        else:
            same = (record.size, record.mtime) == (image.size, image.mtime)
        if same and changed(record, max_pixels=index.max_pixels) is not None:
            return record
    return None


def _move_decisions(index, old: str, new: str) -> None:
    """The user's decisions about id `old` become decisions about `new`, made when they were."""
    found = index.store.decisions([old])
    for a, b, made in found:
        other = b if a == old else a
        if other != new:
            index.store.put_decisions([(min(new, other), max(new, other))], made)
    if found:
        index.store.delete_decisions([(a, b) for a, b, _ in found])

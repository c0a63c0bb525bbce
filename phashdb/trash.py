"""The trash: a folder where duplicates the user throws away wait, restorable, until emptied.

Each trashed file gets a folder of its own named by a fresh id, holding the file under its
original name and `trashed.json` (where it came from, when, the image's id), so that two files
of the same name never collide and a restore knows where to put the file back.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from .errors import Error

INFO = "trashed.json"


@dataclass(frozen=True)
class Trashed:
    """One file in the trash."""

    id: str  # the trash entry's id (its folder name)
    original: str  # where the file was
    path: str  # where it is now
    when: float


def move_to_trash(path: str | os.PathLike, trash: Path) -> Trashed:
    """Move a file into the trash folder `trash`; returns where it went."""
    original = os.path.abspath(path)
    entry = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
    folder = trash / entry
    folder.mkdir(parents=True)
    dest = folder / os.path.basename(original)
    try:
        shutil.move(original, dest)
    except OSError as e:
        folder.rmdir()
        raise Error(f"cannot move {original} to the trash: {e.strerror or e}") from e
    item = Trashed(entry, original, str(dest), time.time())
    (folder / INFO).write_text(
        json.dumps({"original": item.original, "path": item.path, "when": item.when})
    )
    return item

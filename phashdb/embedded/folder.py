"""The band table files' names in an embedded index's folder (the images' and the stored
keys'), and the leftovers of processes that died writing them: apart from live.py (numpy) so that opening the index clears them
without loading the tables."""

from __future__ import annotations

from pathlib import Path

from ..processes import gone

TABLES_FILE = "bands.bin"
KEYS_FILE = "keys.bin"


def remove_stale_temporary_files(folder: Path) -> None:
    """Temporary table files (name.PID.tmp) left by processes that died while writing them."""
    for tmp in [*folder.glob(f"{TABLES_FILE}*.tmp"), *folder.glob(f"{KEYS_FILE}*.tmp")]:
        try:
            pid = int(tmp.name.split(".")[-2])
        except ValueError:
            continue
        if gone(pid):
            tmp.unlink(missing_ok=True)

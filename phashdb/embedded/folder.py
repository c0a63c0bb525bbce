"""The band table files' names in an embedded index's folder (the images' and the stored
keys'), and the leftovers of processes that died writing them: apart from live.py (numpy) so that opening the index clears them
without loading the tables."""

from __future__ import annotations

from pathlib import Path

from ..processes import gone

TABLES_FILE = "bands.bin"
KEYS_FILE = "keys.bin"
# The wide keys' alone (confirm.WIDE_KEYS, searched up to the reach: keys.py).
WIDE_KEYS_FILE = "wide_keys.bin"


def remove_stale_temporary_files(folder: Path) -> None:
    """Temporary table files (name.PID.tmp) left by processes that died while writing them."""
    names = (TABLES_FILE, KEYS_FILE, WIDE_KEYS_FILE)
    for tmp in [t for name in names for t in folder.glob(f"{name}*.tmp")]:
        try:
            pid = int(tmp.name.split(".")[-2])
        except ValueError:
            continue
        if gone(pid):
            tmp.unlink(missing_ok=True)

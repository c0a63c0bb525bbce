"""The embedded index: a folder holding an SQLite database (database.py) and band tables kept
live beside it (live.py), joined by EmbeddedStore (store.py)."""

from __future__ import annotations

from .database import DATABASE_FILE
from .store import EmbeddedStore


def __getattr__(name: str):
    # The band tables' module loads numpy: only what needs them imports it (PEP 562).
    if name == "TABLES_FILE":
        from .live import TABLES_FILE

        return TABLES_FILE
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DATABASE_FILE", "TABLES_FILE", "EmbeddedStore"]

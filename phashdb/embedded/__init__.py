"""The embedded index: a folder holding an SQLite database (database.py) and band tables kept
live beside it (live.py: over the images' hashes, and over their stored keys' in keys.py),
joined by EmbeddedStore (store.py)."""

from __future__ import annotations

from .database import DATABASE_FILE
from .folder import KEYS_FILE, TABLES_FILE, WIDE_KEYS_FILE
from .store import EmbeddedStore

__all__ = ["DATABASE_FILE", "KEYS_FILE", "TABLES_FILE", "WIDE_KEYS_FILE", "EmbeddedStore"]

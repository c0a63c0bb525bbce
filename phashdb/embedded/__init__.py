"""The embedded index: a folder holding an SQLite database and band tables beside it."""

from __future__ import annotations

from .store import DATABASE_FILE, REBUILD_AT, TABLES_FILE, EmbeddedStore

__all__ = ["DATABASE_FILE", "REBUILD_AT", "TABLES_FILE", "EmbeddedStore"]

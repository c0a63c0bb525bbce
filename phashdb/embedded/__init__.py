"""The embedded index: a folder holding an SQLite database and band tables beside it."""

from __future__ import annotations

from .database import DATABASE_FILE
from .live import REBUILD_AT, TABLES_FILE
from .store import EmbeddedStore

__all__ = ["DATABASE_FILE", "REBUILD_AT", "TABLES_FILE", "EmbeddedStore"]

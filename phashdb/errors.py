"""The exceptions phashdb raises: one base class, one subclass per thing that went wrong."""

from __future__ import annotations


class Error(Exception):
    """Base class of every error phashdb raises on purpose."""


class ImageError(Error):
    """An input could not be hashed: not an image, truncated, empty, unreadable or too large."""


class StoreError(Error):
    """The index's storage failed: a database that cannot be opened, a server out of reach."""


class IndexMismatchError(Error):
    """An index was written with settings (hash version, band layout) this code cannot use."""


class TrashError(Error):
    """A trash operation cannot be done: no such entry, or a file in the way of a restore."""

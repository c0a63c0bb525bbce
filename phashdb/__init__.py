"""phashdb: near-duplicate image detection with perceptual hashes in an exact Hamming index.

    import phashdb
    with phashdb.open() as index:            # the embedded index, or "hbase://host:9090/images"
        verdict = index.add("upload.jpg")
        if verdict.duplicate:
            print("duplicate of", verdict.matches[0].path, "at distance", verdict.matches[0].distance)
"""

from __future__ import annotations

from . import descriptor
from .descriptor import DESCRIPTOR_VERSION
from .errors import Error, ImageError, IndexMismatchError, StoreError, TrashError
from .hashing import HASH_VERSION, from_hex, hash_image, read_image, to_hex
from .index import DEFAULT_THRESHOLD, Group, Index, default_location, open
from .records import Decision, Image, Match, Verdict

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_THRESHOLD",
    "DESCRIPTOR_VERSION",
    "HASH_VERSION",
    "Decision",
    "Error",
    "Group",
    "Image",
    "ImageError",
    "Index",
    "IndexMismatchError",
    "Match",
    "StoreError",
    "TrashError",
    "Verdict",
    "default_location",
    "descriptor",
    "from_hex",
    "hash_image",
    "open",
    "read_image",
    "to_hex",
]

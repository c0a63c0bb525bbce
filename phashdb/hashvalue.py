"""A pHash as a value: a 64-bit int in the library, imagehash's 16 hex digits at the edges,
and the name of its definition that indexes record. Apart from phashdb.phash, which computes
it, so that opening an index, skipping unchanged files and printing records load neither numpy
nor Pillow."""

from __future__ import annotations

import re
import sys

# The name of the hash definition (phashdb.phash); indexes record it, so change it with any
# change of bits. v2: a transparent image that is blank on white (white shapes on
# transparency) is hashed on black instead; every other image keeps its v1 bits, so indexes of
# v1 are read as they are.
HASH_VERSION = "phash-dct64-v2"
READS_HASH_VERSIONS = (HASH_VERSION, "phash-dct64-v1")


def to_hex(h: int) -> str:
    """`h` as imagehash writes a pHash: 16 lowercase hex digits."""
    if isinstance(h, bool) or not isinstance(h, int) or not 0 <= h < 1 << 64:
        raise ValueError(f"'h' must be a 64-bit unsigned int, got {h!r}")
    return f"{h:016x}"


def from_hex(s: str) -> int:
    """The hash written as 16 hex digits in `s` (as imagehash and to_hex write it)."""
    if not isinstance(s, str) or not re.fullmatch(r"[0-9a-fA-F]{16}", s):
        raise ValueError(f"{s!r} is not a 16-hex-digit pHash")
    return int(s, 16)


def hash_value(h) -> int:
    """A hash given as an int (Python's or numpy's) or as imagehash's 16 hex digits."""
    if isinstance(h, str):
        return from_hex(h)
    if is_integer(h):
        return int(h)
    raise ValueError(f"a hash must be an int or 16 hex digits, got {h!r}")


def is_integer(value) -> bool:
    """Whether `value` is an int, Python's or numpy's, and not a bool. numpy is not imported
    for this: a numpy integer exists only once something else has imported it."""
    if isinstance(value, bool):
        return False
    np = sys.modules.get("numpy")
    return isinstance(value, int) or (np is not None and isinstance(value, np.integer))

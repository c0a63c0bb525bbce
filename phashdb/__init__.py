"""phashdb: near-duplicate image detection with perceptual hashes in an exact Hamming index.

import phashdb
with phashdb.open() as index:            # the embedded index, or "hbase://host:9090/images"
    verdict = index.add("upload.jpg")
    if verdict.duplicate:
        print("duplicate of", verdict.matches[0].path, "at distance", verdict.matches[0].distance)
"""

from __future__ import annotations

import importlib

# The public names are loaded on first use (PEP 562): `import phashdb.cli` for `phashdb --help`
# must not pay for numpy, Pillow and the index. Each name: the module that defines it.
_LAZY = {
    "descriptor": ".descriptor", "DESCRIPTOR_VERSION": ".descriptor",
    "Error": ".errors", "ImageError": ".errors", "IndexMismatchError": ".errors",
    "StoreError": ".errors", "TrashError": ".errors",
    "HASH_VERSION": ".hashvalue", "from_hex": ".hashvalue", "hash_image": ".phash",
    "read_image": ".phash", "to_hex": ".hashvalue",
    "DEFAULT_THRESHOLD": ".index", "Group": ".index", "Index": ".index",
    "default_location": ".index", "open": ".index",
    "Decision": ".records", "Image": ".records", "Match": ".records", "Verdict": ".records",
}  # fmt: skip


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'phashdb' has no attribute {name!r}")
    module = importlib.import_module(_LAZY[name], __name__)
    value = module if name == "descriptor" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


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

"""An index's stored settings: the defaults a new index gets, the versions of what it holds,
and the refusal of an index whose hashes, descriptors or records this phashdb cannot read."""

from __future__ import annotations

from .bands import HASH_BITS
from .descriptor import DESCRIPTOR_VERSION, READS_DESCRIPTOR_VERSIONS
from .errors import IndexMismatchError
from .hashvalue import HASH_VERSION, READS_HASH_VERSIONS, is_integer

# Chosen by benchmarks/accuracy.py on 231 real photos (README, "Accuracy"): the largest distance
# with no false match (at 10, one edited copy matched another photo: in a million-image index
# that would flag most unique uploads), still catching re-encodes, resizes and most small edits.
DEFAULT_THRESHOLD = 8
# The second stage (phashdb.descriptor): stored images up to this pHash distance are candidates,
# kept when the descriptors confirm them; the flipped and rotated variants of a query are
# searched at the threshold and confirmed the same way. Chosen by benchmarks/accuracy.py
# (README, "Accuracy") against the cost of a wider search (benchmarks/check_10m.py).
DEFAULT_REACH = 16
# The layout of what a backend stores; bumped when that changes. 2: an image's keys (its other
# hashes, kept in its descriptor) are searchable (Store.search_keys); an index of format 1 is
# brought up to it when opened to write (Store.index_keys), and one opened read-only is read
# as it is (its keys are found where the backend reads them from the descriptors). 3: keys of
# names an older phashdb does not know (phashdb.windows), which it would read as damaged
# descriptors, so it refuses the index; nothing to bring up (images stored before keep no
# window keys until ingested again). 4: window keys of 26 bytes under new name bytes
# (descriptor layout v4, descriptor.COMPACT), which an older phashdb would read as damaged
# descriptors: it refuses the index; nothing to bring up (rows stored before keep their 58-byte
# windows, read and confirmed alike).
FORMAT = 4
READS_FORMATS = (1, 2, 3, FORMAT)
# The layout of image records: 2 adds the file's identity (phashdb.identity); records of
# layout 1 are read as they are (their files are checked by size and mtime).
RECORD_VERSION = 2


def opened(store, threshold: int | None) -> dict:
    """The settings of the index in `store`: written first for a new index (with `threshold`,
    default DEFAULT_THRESHOLD), brought up to this phashdb's layouts when it can read them;
    IndexMismatchError when it cannot."""
    settings = store.read_settings()
    if "hash_version" not in settings:  # a new index (HBase's tables come with their bands)
        settings = {
            **settings,
            "format": FORMAT,
            "hash_version": HASH_VERSION,
            "descriptor_version": DESCRIPTOR_VERSION,
            "threshold": DEFAULT_THRESHOLD if threshold is None else radius(threshold),
            "record_version": RECORD_VERSION,
        }
        store.write_settings(settings)
    elif "descriptor_version" not in settings:  # made before the second stage: rows lack it
        if not getattr(store, "read_only", False):  # (read-only: reading needs no setting)
            store.write_settings({"descriptor_version": DESCRIPTOR_VERSION})
        settings = {**settings, "descriptor_version": DESCRIPTOR_VERSION}
    settings = _record_version(store, settings)
    settings = _format(store, settings)
    # An index made with layout v1, v2 or v3 keeps saying so while new rows get v4: rows are
    # told apart by their length and name bytes (phashdb.descriptor).
    if settings["descriptor_version"] not in READS_DESCRIPTOR_VERSIONS:
        raise IndexMismatchError(
            f"the index at {store.url} holds descriptors of version "
            f"{settings['descriptor_version']!r}, but this phashdb makes "
            f"{DESCRIPTOR_VERSION!r}: ingest the images into a new index"
        )
    format = settings.get("format")
    if settings.get("hash_version") not in READS_HASH_VERSIONS or format not in READS_FORMATS:
        raise IndexMismatchError(
            f"the index at {store.url} holds hashes of version "
            f"{settings.get('hash_version')!r} (format {settings.get('format')}), but this "
            f"phashdb makes {HASH_VERSION!r} (format {FORMAT}): ingest the images into a "
            "new index instead of mixing the two"
        )
    return settings


def _format(store, settings: dict) -> dict:
    """An index of format 1 made searchable by its keys (Store.index_keys) once opened to
    write, and one of format 1, 2 or 3 then marked FORMAT; one of another format is left to the
    refusal below."""
    if settings.get("format") in (1, 2, 3) and not getattr(store, "read_only", False):
        if settings["format"] == 1:
            store.index_keys()
        store.write_settings({"format": FORMAT})
        settings = {**settings, "format": FORMAT}
    return settings


def _record_version(store, settings: dict) -> dict:
    """An index of older records gains the newer layout's version once opened to write (its
    records are read as they are, and those written from now on carry file identity); one
    of a newer layout than this code knows is refused."""
    version = settings.get("record_version", 1)
    if version > RECORD_VERSION:
        raise IndexMismatchError(
            f"the index at {store.url} holds records of layout {version}, but this phashdb "
            f"reads up to {RECORD_VERSION}: upgrade phashdb"
        )
    if version < RECORD_VERSION and not getattr(store, "read_only", False):
        store.write_settings({"record_version": RECORD_VERSION})
        settings = {**settings, "record_version": RECORD_VERSION}
    return settings


def radius(value: int) -> int:
    """`value` as a Hamming radius (a threshold, a reach); ValueError when it is not one."""
    if not is_integer(value):
        raise ValueError(f"'radius' must be a whole number of bits, got {value!r}")
    if not 0 <= value <= HASH_BITS:
        raise ValueError(f"'radius' must be in 0..{HASH_BITS}, got {value}")
    return int(value)

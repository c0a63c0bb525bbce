"""Bulk load through HFiles: many images into HBase without a put per row.

Python numbers the new images (one increment of the table's counter) and writes their hashes,
numbers, ids and records into one input file; the project's Java program (java/hbase)
makes the very cells the online path writes (`keys`), sorted, as HFiles per region of each
table, and hands them to HBase with BulkLoadHFiles: the band table first, the record table
last, so an image is visible once its record is, as online. Ids already stored go through the
online path instead (kept when unchanged, replaced when changed), so loading the same images
again adds nothing and a changed file is never left with its old hash.

The loader does not take part in online admission (claims): it is for loading images nobody
is adding online at the same moment.

Finding the Java program: `PHASHDB_BULKLOAD_CLASSPATH` (the whole classpath), else the jar
(`PHASHDB_BULKLOAD_JAR`, default java/hbase/target/phashdb-hbase.jar of this checkout)
with `hbase classpath` when `hbase` is on PATH, else the jars Maven fetched for it
(target/classpath.txt). `HBASE_CONF_DIR` / `HADOOP_CONF_DIR` go on the classpath when set. The
cluster is found through ZooKeeper: the URL's `zookeeper=HOST:PORT`, else hbase-site.xml.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import StoreError
from ..records import Image
from . import keys

PROJECT = Path(__file__).resolve().parents[2]
JAR = PROJECT / "java" / "hbase" / "target" / "phashdb-hbase.jar"
MAIN_CLASS = "phashdb.bulkload.BulkLoad"
MAGIC = b"PHBULK3\n"
LOOKUP_CHUNK = 100_000  # ids per online lookup when the table already holds many images
# The JDK 11+ module flags HBase's own bin/hbase passes to its client.
JDK_FLAGS = [
    "-Dorg.apache.hbase.thirdparty.io.netty.tryReflectionSetAccessible=true",
    "--add-modules=jdk.unsupported",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens=java.base/java.util=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
    "--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED",
]


@dataclass
class LoadReport:
    added: int = 0  # images loaded
    skipped: int = 0  # ids already stored: not bulk-loaded, kept or replaced online
    seconds: dict | None = None  # the Java program's phases (read, connect, sort_ids, cells, load)
    bytes: int = 0  # HFile bytes written


def load(store, images: Iterable[Image], *, zookeeper: str | None = None) -> LoadReport:
    """Bulk-load `images` (an id given twice: the last wins) into the HBase `store`."""
    images = list({image.id: image for image in images}.values())
    return _load(store, [i.id for i in images], None, images, zookeeper)


def load_hashes(
    store, ids: Sequence[str], hashes: np.ndarray, *, zookeeper: str | None = None
) -> LoadReport:
    """Bulk-load (id, hash) pairs, as `Index.add_hashes` stores them (an id given twice: the
    last wins)."""
    if len(ids) != len(hashes):
        raise ValueError(f"{len(ids)} ids but {len(hashes)} hashes")
    return _load(store, list(ids), np.asarray(hashes, dtype=np.uint64), None, zookeeper)


def _load(store, ids: list[str], hashes, images, zookeeper) -> LoadReport:
    report = LoadReport()
    stored = stored_ids(store, ids)
    if stored:
        keep = [n for n, id in enumerate(ids) if id not in stored]
        report.skipped = len(ids) - len(keep)
        # Ids stored already take the online path: kept when unchanged, replaced when their
        # hash or record changed (a file edited since it was loaded), never left stale.
        again = [n for n, id in enumerate(ids) if id in stored]
        if hashes is not None:
            store.put_hashes([ids[n] for n in again], hashes[np.array(again, dtype=np.int64)])
        else:
            store.put([images[n] for n in again])
        ids = [ids[n] for n in keep]
        if hashes is not None:
            hashes = hashes[np.array(keep, dtype=np.int64)]
        else:
            images = [images[n] for n in keep]
    if not ids:
        return report
    cp = classpath(store.url)  # before numbers are given out: a missing jar costs none
    java = _java(store.url)
    now = time.time()
    added = ""  # the loader makes the records of plain ids known by hash alone
    records: list[bytes] = []
    if hashes is None:
        images = [i if i.added else replace(i, added=now) for i in images]
        hashes = np.array([i.hash for i in images], dtype=np.uint64)
        records = [keys.encode_record(i) for i in images]
    elif plain_ids(ids):
        added = repr(now)
    else:
        records = keys.hash_records(ids, hashes, now)
    # Band cells are tagged as online batches' are: with numbers no image has, one per cell of
    # a band value, which holds as many entries as an online batch's cell at most.
    per_cell = store.options.batch_size
    tags = -(-len(ids) // per_cell)
    last = store.records.allocate(tags + len(ids))[-1]
    numbers = np.arange(last - len(ids) + 1, last + 1, dtype=np.uint64)
    tag_numbers = list(range(last - len(ids) - tags + 1, last - len(ids) + 1))
    band_ts = int(now * 1000) - int(now * 1000) % keys.BAND_TIME_STEP
    if images:  # keys' band cells (few images have keys) online, before the records
        store.writer.write_key_cells(list(zip(numbers.tolist(), images)), tag_numbers[0])
    with tempfile.TemporaryDirectory(prefix="phashdb-bulkload-") as tmp:
        source = Path(tmp) / "cells.bin"
        write_input(source, store.layout, store.row_bits, band_ts, int(now * 1000), per_cell,
                    tag_numbers, added, hashes, numbers, ids, records)  # fmt: skip
        del records
        summary = run_java(
            java, cp, source, store.options.table, zookeeper or store.options.zookeeper,
            store.url, len(ids), records=store.records.table.name.decode(),
        )  # fmt: skip
    report.added = summary["images"]
    report.seconds = summary.get("seconds")
    report.bytes = summary.get("bytes", 0)
    return report


# --- which ids are stored ------------------------------------------------------------------


def stored_ids(store, ids: list[str]) -> set[str]:
    """Which of `ids` are stored. Reading every id cell and record key costs in proportion to
    the numbers ever given out; looking each id up, to the ids asked about: the cheaper one."""
    given = store.records.last_number()
    if given == 0:
        return set()
    if given > 4 * len(ids):
        found: set[str] = set()
        for lo in range(0, len(ids), LOOKUP_CHUNK):
            found.update(store.lookup(ids[lo : lo + LOOKUP_CHUNK]))
        return found
    numbers = {q: n for _, q, n, _ in store.records.id_cells()}
    recorded = set(store.records.numbers())
    # An id cell whose number has no record is left from a removal: that id is not stored.
    return {id for id in ids if numbers.get(keys.encode_id(id), 0) in recorded}


# --- the input file ------------------------------------------------------------------------


_NOT_PLAIN = re.compile(r'[^\x20-\x7e]|["\\]')


def plain_ids(ids: Sequence[str]) -> bool:
    """Whether every id is printable ASCII without quote or backslash: JSON as it is, so the
    loader can write the records of such ids itself (as `keys.hash_records` would)."""
    step = 100_000
    return not any(_NOT_PLAIN.search("".join(ids[k : k + step])) for k in range(0, len(ids), step))


def write_input(
    path: Path, layout, row_bits: int, band_ts: int, cell_ts: int, per_cell: int,
    tags: list[int], added: str, hashes: np.ndarray, numbers: np.ndarray, ids: Sequence[str],
    records: Sequence[bytes],
) -> None:  # fmt: skip
    """The Java program's input (its layout: java/hbase/.../BulkLoad.java). `added`: the
    records' `added` when the loader makes them (then `records` is empty)."""
    raw_ids = [keys.encode_id(id) for id in ids]
    n = len(raw_ids)
    header = (
        np.array(
            [n, len(layout.widths), *layout.widths, *layout.shifts, row_bits], dtype=">i4"
        ).tobytes()
        + np.array([band_ts, cell_ts], dtype=">i8").tobytes()
        + np.array([per_cell, len(tags)], dtype=">i4").tobytes()
        + np.array(tags, dtype=">i8").tobytes()
    )
    with open(path, "wb") as f:
        f.write(MAGIC + header + len(added).to_bytes(4, "big") + added.encode("ascii"))
        f.write(np.asarray(hashes, dtype=np.uint64).astype(">u8").tobytes())
        f.write(np.asarray(numbers, dtype=np.uint64).astype(">u8").tobytes())
        for blobs in (raw_ids, records) if not added else (raw_ids,):
            ends = np.cumsum(np.fromiter(map(len, blobs), dtype=np.int64, count=n))
            f.write(ends.astype(">i8").tobytes())
            f.write(b"".join(blobs))


# --- the Java program ----------------------------------------------------------------------


def _java(url: str) -> str:
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).exists():
        raise StoreError(
            f"bulk load into {url}: no Java found (the HFile bulk load runs a Java program): "
            "install a JDK (11 or later) or set JAVA_HOME, or load online"
        )
    return java


def classpath(url: str) -> str:
    """The Java program's classpath (see the module's notes)."""
    given = os.environ.get("PHASHDB_BULKLOAD_CLASSPATH")
    if given:
        return given
    jar = Path(os.environ.get("PHASHDB_BULKLOAD_JAR", JAR))
    if not jar.exists():
        raise StoreError(
            f"bulk load into {url}: the bulk loader's jar {jar} is not built: run "
            "`mvn -f java/hbase/pom.xml package` (or `bash scripts/setup.sh`), or set "
            "PHASHDB_BULKLOAD_JAR"
        )
    parts = [str(jar)]
    parts += [os.environ[v] for v in ("HBASE_CONF_DIR", "HADOOP_CONF_DIR") if os.environ.get(v)]
    maven = jar.parent / "classpath.txt"
    if shutil.which("hbase"):
        try:
            out = subprocess.run(
                ["hbase", "classpath"], capture_output=True, text=True, check=True, timeout=120
            ).stdout
        except (OSError, subprocess.SubprocessError) as e:
            raise StoreError(f"bulk load into {url}: `hbase classpath` failed: {e}") from e
        parts.append(out.strip().splitlines()[-1])
    elif maven.exists():
        parts.append(maven.read_text().strip())
    else:
        raise StoreError(
            f"bulk load into {url}: no HBase jars for the bulk loader: put `hbase` on PATH, or "
            "build java/hbase with Maven, or set PHASHDB_BULKLOAD_CLASSPATH"
        )
    return os.pathsep.join(parts)


def run_java(
    java: str,
    cp: str,
    source: Path,
    table: str,
    zookeeper: str | None,
    url: str,
    count: int,
    *,
    records: str | None = None,
) -> dict:
    heap = os.environ.get("PHASHDB_BULKLOAD_HEAP") or f"{max(1024, 512 + count * 120 // 2**20)}m"
    command = [java, f"-Xmx{heap}", "-XX:+UseParallelGC", *JDK_FLAGS, "-cp", cp, MAIN_CLASS]
    command += ["--input", str(source), "--table", table]
    if records:  # else the loader's default: T_images
        command += ["--records", records]
    if zookeeper:
        command += ["--zookeeper", zookeeper]
    if os.environ.get("PHASHDB_BULKLOAD_DIR"):
        command += ["--dir", os.environ["PHASHDB_BULKLOAD_DIR"]]
    try:
        done = subprocess.run(command, check=False, capture_output=True, text=True)
    except OSError as e:
        raise StoreError(f"bulk load into {url}: cannot run {java}: {e}") from e
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
        reason = errors[-1][7:] if errors else (done.stderr.strip().splitlines() or ["?"])[-1]
        raise StoreError(f"bulk load into {url} failed: {reason[:500]}")
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise StoreError(f"bulk load into {url}: the loader said {done.stdout[-300:]!r}") from None

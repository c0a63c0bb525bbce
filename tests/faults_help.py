"""What the fault tests (tests/test_faults_index.py, tests/test_faults_disk.py) share: indexes of
clustered hashes, verdicts compared with brute force in a fresh process, the CLI, small photos."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from conftest import PHASHDB
from PIL import Image as PILImage

import phashdb
from phashdb.embedded import TABLES_FILE


def clustered_hashes(seed: int, n: int) -> np.ndarray:
    """Hashes in clusters, so that queries near them have several answers at small radii."""
    rng = np.random.default_rng(seed)
    centres = rng.integers(0, 2**64, max(n // 20, 1), dtype=np.uint64, endpoint=False)
    hashes = centres[rng.integers(0, len(centres), n)]
    for bit in range(64):
        hashes[rng.random(n) < 0.04] ^= np.uint64(1 << bit)
    return hashes


def make_index(path: Path, n: int = 3000, seed: int = 1) -> dict[str, int]:
    """An index of `n` clustered hashes whose band tables are saved (what a large index has)."""
    pairs = {f"img{i}": int(h) for i, h in enumerate(clustered_hashes(seed, n))}
    with phashdb.open(path) as index:
        index.add_hashes(pairs.items())
        index.fsck(repair=True)  # builds the tables now; they are saved on close
    assert (path / TABLES_FILE).exists()
    return pairs


# A fresh process answers queries near stored hashes at several radii and compares every answer
# with a brute-force scan over the hashes SQLite holds (the truth). Prints one JSON line.
VERDICTS = r"""
import json, sqlite3, sys
import numpy as np
import phashdb
path, seed = sys.argv[1], int(sys.argv[2])
try:
    db = sqlite3.connect(f"file:{path}/index.sqlite3?mode=ro", uri=True)
    rows = db.execute("SELECT id, hash FROM images").fetchall()
    # A malformed b-tree can read back without an error yet miss or repeat rows: SQLite's own
    # check says whether what it read is the truth.
    if db.execute("PRAGMA integrity_check").fetchall() != [("ok",)]:
        rows = None
except (sqlite3.DatabaseError, UnicodeDecodeError):  # (its message quoting damaged bytes)
    rows = None  # SQLite itself cannot read it all: nothing to compare with
if rows and not all(type(i) is str and type(h) is int for i, h in rows):
    rows = None  # rows that break the schema: the truth itself is damaged
try:
    index = phashdb.open(path)
    if rows is None:
        index.query_many(list(range(40)), 8)
        index.close()
        print(json.dumps({"outcome": "unverifiable"}))
        sys.exit()
    ids = [r[0] for r in rows]
    hashes = np.array([r[1] for r in rows], dtype=np.int64).view(np.uint64)
    rng = np.random.default_rng(seed)
    queries = hashes[rng.integers(0, len(hashes), 40)]
    for bit in range(64):
        queries[rng.random(len(queries)) < 0.03] ^= np.uint64(1 << bit)
    wrong = 0
    for radius in (0, 3, 8, 12):
        answers = index.query_many(queries.tolist(), radius)
        d = np.bitwise_count(hashes[None, :] ^ queries[:, None])
        for q, got in enumerate(answers):
            near = np.flatnonzero(d[q] <= radius)
            want = sorted((int(d[q, r]), ids[r]) for r in near)
            wrong += sorted((dist, i) for i, dist in got) != want
    index.close()
    print(json.dumps({"outcome": "wrong" if wrong else "right", "wrong": wrong}))
except phashdb.Error as e:
    print(json.dumps({"outcome": "error", "message": str(e)}))
"""


def verdicts(path: Path, seed: int = 0) -> dict:
    """Run VERDICTS on the index at `path` in a fresh process (a crash is seen, not suffered)."""
    done = subprocess.run(
        [sys.executable, "-c", VERDICTS, str(path), str(seed)],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        return {"outcome": f"crash (exit {done.returncode})", "stderr": done.stderr[-2000:]}
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "stderr": done.stderr}


def phashdb_cli(db: Path, *args, timeout: float = 300):
    return subprocess.run(
        [PHASHDB, "-q", "--db", str(db), *map(str, args)],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def photo_folder(folder: Path, count: int, seed: int) -> Path:
    """`count` distinct small photos (random blocks, so that each hashes differently)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for n in range(count):
        blocks = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        PILImage.fromarray(blocks).resize((96, 96), PILImage.NEAREST).save(folder / f"p{n:04}.png")
    return folder

"""Hostile PNGs against phashdb.png's C unfiltering and chunk walk, a bounded and seeded run of
benchmarks/fuzz_png.py (bit flips, IHDR lies, lying chunk lengths, IDAT split or cut, IEND
missing or doubled, corrupt streams, bombs' headers): the fast path gives exactly Pillow's image
or leaves the file to Pillow, and read_image the same hash or error. In a subprocess, so that a
crash is seen as one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DRIVER = Path(__file__).parent.parent / "benchmarks" / "fuzz_png.py"


def test_damaged_and_lying_pngs_decode_as_pillow_decodes_them():
    command = [sys.executable, "-X", "faulthandler", "-W", "ignore", str(DRIVER), "200", "7"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    last = done.stdout.replace("\r", "\n").splitlines()[-1]
    assert last.endswith(", 0 differ") and "took 0," not in last, last

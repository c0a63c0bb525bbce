"""The bulk-load rate of the embedded index, as `search_10m.py` loads (uniform hashes, ids
`iN`, a million pairs at a time), without its queries and faiss: for comparing two trees.

    python benchmarks/load_rate.py [--size 10000000]
    PYTHONPATH=/tmp/before python benchmarks/load_rate.py   # a `git archive` of another commit

Prints which tree ran, `add_hashes` per second of wall time and of the process's CPU (on a
shared machine the steadier figure), the seconds to build the band tables and close, the
process's peak resident memory and the load average. Run the trees in turns.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
from pathlib import Path

import numpy as np
from search_10m import load_index  # the same load, a million pairs at a time

import phashdb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10_000_000)
    n = parser.parse_args().size
    hashes = np.random.default_rng(11).integers(0, 2**64, n, dtype=np.uint64, endpoint=False)
    with tempfile.TemporaryDirectory() as folder:
        load, cpu, build = load_index(folder, hashes)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    tree = Path(phashdb.__file__).parent.parent
    print(
        f"{tree}: {n / load:,.0f}/s wall, {n / cpu:,.0f}/s of CPU; tables built and closed in "
        f"{build:.1f} s; peak {peak:.2f} GB; load {open('/proc/loadavg').read().split()[0]}"
    )


if __name__ == "__main__":
    main()

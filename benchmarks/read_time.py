"""CPU time of `read_image` (hash, descriptor and keys) an image of a folder, as the installed
phashdb computes it: to compare two versions, run it under each, in turns.

    python benchmarks/read_time.py FOLDER
    farm-bench -n 7 --vs "sh -c 'exec OLD/bin/python benchmarks/read_time.py FOLDER >>old.txt'" \
        -- sh -c 'exec NEW/bin/python benchmarks/read_time.py FOLDER >>new.txt'

Every file of FOLDER (not its subfolders) is read once to warm up, then three times; prints the
middle pass's CPU milliseconds an image. Written against no phashdb module but `read_image`,
found where the version has it (`phashdb.phash`, `phashdb.hashing` before Dec 6 23:16), so that
the version the issue was filed against (git b6d6e7b) runs it as it is.

Run of Dec 7 (the windows' issue 24 asks hashing at most 1.3x its day's default; 640-px JPEGs
of the 231 photos, 12 MP JPEGs of 8 of them, the photos as they are; farm-bench -n 7 pairs;
load 1.2-2.2): see docs/accuracy-beyond-photos.md, "Windows".
"""

from __future__ import annotations

import os
import sys
import time

try:
    from phashdb.phash import read_image
except ImportError:
    from phashdb.hashing import read_image


def main() -> None:
    folder = sys.argv[1]
    files = sorted(os.path.join(folder, n) for n in os.listdir(folder))
    for f in files:
        read_image(f)
    passes = []
    for _ in range(3):
        start = time.thread_time()
        for f in files:
            read_image(f)
        passes.append((time.thread_time() - start) / len(files))
    print(f"{sys.prefix}: {sorted(passes)[1] * 1e3:.3f} ms an image ({len(files)} files)")


if __name__ == "__main__":
    main()

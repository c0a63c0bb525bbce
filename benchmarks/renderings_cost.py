"""What a transparent source's stored keys (phashdb.renderings) cost hashing: read_image of
the transparent images in FOLDERS, in turns without the keys, with the keys as made at git
revision REV (before) and as made now, in one process, CPU time of the process; and how far
each key moved from REV's.

    python benchmarks/renderings_cost.py FOLDER... [--before REV] [--rounds 5]

Run with PYTHONDONTWRITEBYTECODE unset after `python -m compileall -q phashdb`; give the load
average beside the figures.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import types
from pathlib import Path

from PIL import Image

import phashdb
from phashdb import phash
from phashdb.renderings import NAMES

ROOT = Path(__file__).resolve().parent.parent


def module_at(rev: str, name: str, replace: dict[str, str]) -> types.ModuleType:
    """phashdb's module `name` as it was at git revision `rev`, its imports renamed by
    `replace`, loaded beside today's."""
    text = subprocess.run(
        ["git", "show", f"{rev}:phashdb/{name}.py"], cwd=ROOT, check=True,
        capture_output=True, text=True,
    ).stdout  # fmt: skip
    for a, b in replace.items():
        text = text.replace(a, b)
    module = types.ModuleType(f"phashdb._before_{name}")
    module.__package__ = "phashdb"
    sys.modules[module.__name__] = module
    exec(compile(text, f"{rev}:phashdb/{name}.py", "exec"), module.__dict__)
    return module


def transparent(folders: list[str]) -> list[bytes]:
    out = []
    for folder in folders:
        for path in sorted(Path(folder).rglob("*")):
            if path.suffix.lower() not in (".png", ".gif", ".webp"):
                continue
            with Image.open(path) as img:
                if img.has_transparency_data:
                    out.append(path.read_bytes())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--before", default="928ec43")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    module_at(args.before, "renderings", {})
    before = module_at(args.before, "phash", {"from .renderings": "from ._before_renderings"})
    datas = transparent(args.folders)
    keyless = phash.rendering_keys

    def without(data):
        phash.rendering_keys = lambda *a: ()
        try:
            return phash.read_image(data)
        finally:
            phash.rendering_keys = keyless

    turns = {"without keys": without, "before": before.read_image, "now": phash.read_image}
    best = dict.fromkeys(turns, float("inf"))
    for _ in range(args.rounds):
        for name, read in turns.items():
            t = time.process_time()
            for data in datas:
                read(data)
            best[name] = min(best[name], time.process_time() - t)
    base = best["without keys"]
    print(f"phashdb {phashdb.__version__}: {len(datas)} transparent images, best of "
          f"{args.rounds} rounds (CPU s): " + ", ".join(
              f"{n} {s:.2f} ({s / base:.2f}x)" for n, s in best.items()))  # fmt: skip
    moved, count = [], {"before": 0, "now": 0}
    for data in datas:
        keys = [{k.name: k.hash for k in r(data).keys if k.name in NAMES} for r in turns.values()]
        count["before"] += len(keys[1])
        count["now"] += len(keys[2])
        moved += [(keys[1][n] ^ keys[2][n]).bit_count() for n in keys[1].keys() & keys[2].keys()]
    print(
        f"keys: before {count['before']}, now {count['now']}; of the {len(moved)} kept by "
        f"both, moved by at most {max(moved, default=0)} bits, mean {sum(moved) / max(1, len(moved)):.2f}"
    )


if __name__ == "__main__":
    main()

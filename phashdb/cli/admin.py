"""The commands that look after the index: `stats`, `remove` and `fsck`."""

from __future__ import annotations

import json
import os
import sys

from phashdb.cli.common import (
    EXIT_DUPLICATE,
    EXIT_ERROR,
    Options,
    PathName,
    argument,
    command,
    echo,
    json_option,
    option,
    print_stats,
    shown,
)


@command(json_option)
def stats(opts: Options, as_json) -> None:
    """What the index holds and how it is set up."""
    with opts.open() as index:
        info = index.stats()
    if as_json:
        echo(json.dumps(info))
    else:
        print_stats(info)


@command(argument("ids", nargs="+"))
def remove(opts: Options, ids) -> None:
    """Forget images by id (the files themselves are not touched, but for the service's own
    copies of uploads: those go to the trash, restorable)."""
    from phashdb.uploaded import forget

    missing = []
    with opts.open() as index:
        for id in ids:
            if (image := index.get(id)) is None:
                missing.append(id)
            elif trash_id := forget(index, image):
                echo(f"removed {shown(id)} (its uploaded file is in the trash as {trash_id})")
            else:
                echo(f"removed {shown(id)}")
    for id in missing:
        echo(f"phashdb: error: no image with id {id!r} in the index", err=True)
    if missing:
        sys.exit(EXIT_ERROR)


@command(
    option(
        "--repair",
        flag=True,
        help="Remove what a crashed writer left half-written; rebuild the band tables from the "
        "database (on HBase: gather each band value's cells into one, which single adds spread).",
    ),
    option(
        "--uploads", type=PathName(exists=True, file_okay=False), metavar="DIR",
        help="Also check the uploads folder of `phashdb serve`: uploads with no record (a kill); "
        "--repair stores each if unique, else removes it.",
    ),
)  # fmt: skip
def fsck(opts: Options, repair, uploads) -> None:
    """Check the index: half-written entries, the trash against the index (what a crash left
    half-done), and (embedded index) the database's integrity and that the band tables hold
    exactly its rows; --repair sets right what can be set right."""
    from phashdb.trash import check as check_trash
    from phashdb.uploaded import check as check_uploads

    with opts.open() as index:
        orphans = index.fsck(repair=repair)
        trash_problems = check_trash(index.trash, index=index, repair=repair)
        in_uploads = (
            check_uploads(os.path.abspath(uploads), index, repair=repair) if uploads else []
        )
        damaged = index.damaged_descriptors(repair=repair)
    for id, h in orphans:
        echo(f"{'removed' if repair else 'orphan'}: {id} {h:016x}")
    echo(f"{len(orphans)} orphaned entries" + (" removed" if repair and orphans else ""))
    for id in damaged:
        # Verdicts treat it as missing (the plain threshold); adding the file again mends it.
        echo(f"damaged descriptor{' removed' if repair else ''}: {shown(id)}")
    if damaged:
        echo(f"{len(damaged)} damaged descriptors" + (" removed" if repair else ""))
    for problem in trash_problems:
        echo(f"trash: {shown(problem)}")
    if trash_problems:
        echo(f"{len(trash_problems)} trash problems" + (" repaired" if repair else ""))
    for problem in in_uploads:
        echo(f"uploads: {shown(problem)}")
    if (orphans or trash_problems or in_uploads or damaged) and not repair:
        sys.exit(EXIT_DUPLICATE)

"""The commands that fill and ask the index: `init`, `ingest`, `pack`, `check`, `add` and
`similar`."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace

from phashdb.bands import HASH_BITS, HBASE_BANDS, BandLayout
from phashdb.cli.common import (
    EXIT_DUPLICATE,
    EXIT_ERROR,
    Choice,
    Options,
    PathName,
    Range,
    UsageError,
    argument,
    choose,
    command,
    default_of,
    each,
    echo,
    given,
    json_option,
    library,
    option,
    print_stats,
    progress,
    runner_option,
    say,
    shown,
    threshold_option,
    verdict_line,
)

_HBASE_WIDTHS = BandLayout.even(HBASE_BANDS).widths


def _reach_help() -> str:
    reach = library("phashdb.index", "DEFAULT_REACH")
    return (
        "Largest pHash distance at which the second stage may confirm a duplicate (default "
        f"{reach}; 0: off)."
    )


@command(
    threshold_option,
    option(
        "--bands",
        metavar="W,W,...",
        help=f"HBase: band widths in bits, adding up to {HASH_BITS} (default "
        f"{len(_HBASE_WIDTHS)} bands: {','.join(map(str, _HBASE_WIDTHS))}).",
    ),
    option(
        "--regions-per-band",
        type=Range(int, 1, 256),
        settings=lambda: {
            "default_shown": library("phashdb.hbase.schema", "DEFAULT_REGIONS_PER_BAND")
        },
        help="HBase: regions each band is pre-split into.",
    ),
    option(
        "--print-schema",
        flag=True,
        help="HBase: print the HBase shell script that creates the tables, and do nothing else.",
    ),
    option(
        "--reach",
        type=Range(int, 0, HASH_BITS),
        settings=lambda: {"help": _reach_help()},
        help="Largest pHash distance at which the second stage may confirm a duplicate (0: off).",
    ),
    option(
        "--variants",
        "--no-variants",
        switch=True,
        help="Whether flipped and rotated copies are looked for (default: yes).",
    ),
)
def init(opts: Options, threshold, bands, regions_per_band, print_schema, reach, variants) -> None:
    """Create the index (if missing) and show its settings.

    For HBase, the tables are created pre-split through HBase's Thrift2 server (the URL's
    port, hbase://HOST:9090/TABLE), or run the script that
    --print-schema prints with `hbase shell`."""
    from phashdb.store import backend

    if opts.db and "layout" in backend(opts.db).capabilities:
        from phashdb.hbase import (
            DEFAULT_BANDS,
            DEFAULT_REGIONS_PER_BAND,
            HBaseOptions,
            create_tables,
            schema_script,
        )

        layout = (
            BandLayout(tuple(int(w) for w in bands.split(",")))
            if bands
            else BandLayout.even(DEFAULT_BANDS)
        )
        if regions_per_band is None:
            regions_per_band = DEFAULT_REGIONS_PER_BAND
        if print_schema:
            table = HBaseOptions.from_url(opts.db).table
            echo(schema_script(table, layout, regions_per_band), nl=False)
            return
        create_tables(opts.db, bands=layout, regions_per_band=regions_per_band)
    elif bands or print_schema:
        raise UsageError("--bands and --print-schema are for HBase indexes")
    with opts.open(create=True, threshold=threshold) as index:
        if (threshold, reach, variants) != (None, None, None):
            index.configure(threshold=threshold, reach=reach, variants=variants)
        print_stats(index.stats())


def _folder_or_url(value: str) -> str:
    """Local folders or files must exist; hdfs:// URLs are listed by the ingest itself."""
    if not value.startswith("hdfs://") and not os.path.exists(value):
        raise ValueError(f"{value!r} does not exist")
    return value


def _load_settings() -> dict:
    from phashdb.mr import run

    return {"type": Choice(run.LOADS), "default_shown": default_of(run.ingest, "load")}


@command(
    argument("folders", nargs="+", type=_folder_or_url),
    option("--workers", "-j", type=Range(int, 1), help="Processes (default: all cores)."),
    runner_option,
    option(
        "--load",
        settings=_load_settings,
        help="With --runner and an HBase index: load through HFiles (HBase's bulk load) or by "
        "the tasks' puts.",
    ),
    json_option,
)
def ingest(opts: Options, folders, workers, runner, load, as_json) -> None:
    """Hash and store every image under FOLDERS (resumable: unchanged files are skipped).

    Without --runner, on all cores of this machine; with it, as the MapReduce ingest job
    (mrjob: its runner options come from mrjob.conf / $MRJOB_CONF). FOLDERS may be
    hdfs://HOST:PORT/PATH URLs (files, and the images in packs made by `phashdb pack`)."""
    from phashdb.ingest import find_images
    from phashdb.ingest import ingest as run

    with opts.open(create=True) as index:
        if runner:
            from phashdb.mr import run as mr

            report = mr.ingest(index, folders, runner, **given(load=load))
        else:
            with progress(opts, lambda: len(find_images(folders)), "hashing") as bar:
                report = run(index, folders, workers=workers, progress=bar.update)
            if report.added:  # the dedupe that follows an ingest then only prints
                from phashdb import group_cache

                group_cache.refresh(index, report.added)
    if not (report.added or report.skipped or report.duplicates or report.failed):
        echo(shown(f"phashdb: no image files found under {', '.join(folders)}"), err=True)
    if as_json:
        echo(json.dumps(report.to_json()))
    else:
        for _path, error in report.failed:
            echo(f"failed: {shown(error)}", err=True)
        echo(
            f"{report.added} added, {report.skipped} skipped, "
            f"{report.duplicates} duplicates, {len(report.failed)} failed"
        )
    if report.failed:
        sys.exit(EXIT_ERROR)


def _pack_mb() -> int:
    from phashdb.hdfs import write_packs

    return default_of(write_packs, "pack_bytes") >> 20


@command(
    argument("folders", nargs="+", type=PathName(exists=True)),
    option("--to", dest="target", required=True, help="Folder for the packs: hdfs:// or local."),
    option("--pack-mb", type=Range(int, 1), settings=lambda: {"default_shown": _pack_mb()}),
)
def pack(opts: Options, folders, target, pack_mb) -> None:
    """Pack the images under FOLDERS into tar files of about --pack-mb each, for HDFS: one
    NameNode object per pack, not per image. `ingest` reads the images in them."""
    from phashdb.hdfs import write_packs
    from phashdb.ingest import find_images

    images = find_images(folders)
    packs = write_packs(images, target, **given(pack_bytes=pack_mb and pack_mb << 20))
    echo(f"{len(images)} images in {len(packs)} packs under {target}")


@command(argument("images", nargs="+"), threshold_option, json_option)
def check(opts: Options, images, threshold, as_json) -> None:
    """Say whether each image duplicates a stored one; nothing is stored."""
    with opts.open() as index:
        _report(opts, images, lambda img: index.check(img, threshold=threshold), as_json)


@command(
    argument("images", nargs="+"),
    option(
        "--on-duplicate",
        settings=lambda: {"type": Choice(("ask", *library("phashdb.watch", "ON_DUPLICATE")))},
        help="What to do with a duplicate: ask; keep it (stored as a known duplicate); move it "
        "to the trash; or skip it (left where it is, not stored). Default: ask on a terminal; "
        "keep when stdin is not one (a script, cron, a pipe), where nothing is ever asked.",
    ),
    threshold_option,
    json_option,
)
def add(opts: Options, images, on_duplicate, threshold, as_json) -> None:
    """Store each image if it is unique; for a duplicate, keep it or move it to the trash.
    A stored image renamed or moved is followed (its record takes the new path), and a file
    put over a stored path replaces its record."""
    from phashdb.errors import Error
    from phashdb.follow import admit, trash_duplicate

    if on_duplicate is None:
        on_duplicate = "ask" if sys.stdin.isatty() else "keep"
    elif on_duplicate == "ask" and not sys.stdin.isatty():
        raise Error("--on-duplicate ask needs a terminal on stdin: give keep, trash or skip")
    # Kept without asking: stored in the one call, the verdict line says "(kept)".
    keep = on_duplicate == "keep"
    with opts.open(create=True) as index:

        def verdict_of(img):
            admitted = admit(index, img, keep_duplicate=keep, threshold=threshold)
            if admitted.moved_from is not None:
                was = admitted.moved_from.path
                say(as_json, shown(f"{img}: moved from {was}, its record follows it"))
            return admitted.verdict

        def act(img, verdict):
            """(the verdict now, what was done, its JSON fields) for a duplicate just shown."""
            action = on_duplicate
            if action == "ask":
                from phashdb.watch import ON_DUPLICATE

                action = choose(
                    f"{shown(img)}: keep it or move it to the trash?", ON_DUPLICATE, "skip"
                )
            if action == "keep":
                kept = index.add(img, keep_duplicate=True, threshold=threshold)
                return kept, "kept (stored as a known duplicate)", {"action": "kept"}
            if action == "trash":
                moved = trash_duplicate(index, img, verdict)
                if isinstance(moved, str):  # no match's file is still the one recorded
                    return replace(verdict, added=True), moved, {"action": "kept"}
                said = f"moved to {moved.path} (restore: phashdb trash restore {moved.id})"
                return verdict, said, {"action": "trashed", "trash_id": moved.id}
            return verdict, "skipped (left where it is, not stored)", {"action": "skipped"}

        _report(opts, images, verdict_of, as_json, act=None if keep else act)


@command(
    argument("image"),
    option(
        "--top",
        "-k",
        type=Range(int, 1),
        settings=lambda: {
            "default_shown": default_of(library("phashdb.index", "Index").similar, "top")
        },
    ),
    json_option,
)
def similar(opts: Options, image, top, as_json) -> None:
    """The stored images nearest to IMAGE, nearest first."""
    with opts.open() as index:
        found = index.similar(image, **given(top=top))
    if as_json:
        echo(json.dumps([m.to_json() for m in found]))
    for m in [] if as_json else found:
        echo(f"{m.distance:2d}  {shown(m.path or m.id)}")


def _report(opts: Options, images, verdict_of, as_json: bool, act=None) -> None:
    """Give each image's verdict, then (`act`, for a duplicate not stored) what was done with
    it; exit 1 if any is a duplicate, 2 if any failed."""
    docs, duplicate = [], False

    def one(img):
        verdict = verdict_of(img)
        say(as_json, verdict_line(img, verdict))
        extra = {}
        if act is not None and verdict.duplicate and not verdict.added:
            verdict, said, extra = act(img, verdict)
            say(as_json, shown(f"{img}: {said}"))
        return verdict, {**verdict.to_json(), **extra}

    def done(img, result):
        nonlocal duplicate
        duplicate |= result[0].duplicate
        docs.append(result[1])

    failed = each(opts, images, one, done)
    if as_json:
        echo(json.dumps(docs))
    if failed:
        sys.exit(EXIT_ERROR)
    if duplicate:
        sys.exit(EXIT_DUPLICATE)

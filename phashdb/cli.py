"""The `phashdb` command: parse, call the library, format. Nothing else lives here."""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import click

from phashdb.bands import HBASE_BANDS, BandLayout

# numpy's OpenBLAS starts a thread per core that spins while the first waits: for the 8x32
# matrices hashing multiplies that is pure cost, a third of a re-run's CPU time, and in every
# ingest worker it competes with the other workers. Set before numpy is first imported; a
# user's own setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

EXIT_OK, EXIT_DUPLICATE, EXIT_ERROR = 0, 1, 2
EXIT_CODES = """Exit codes: 0 done, every image unique; 1 a duplicate was found (check, add);
2 a usage or input error (a bad image, an unreachable, damaged or read-only index, a full disk)."""


@dataclass
class Options:
    db: str | None
    debug: bool
    quiet: bool

    def open(self, *, create: bool = False, **options):
        """The index; only commands that store (`create`) may make it where none is."""
        import phashdb

        self.check(create=create)
        return phashdb.open(self.db, **options)

    def check(self, *, create: bool) -> None:
        """Refuse an embedded index's folder that is not one: a typo (`--db ~/Pictures`) must
        not turn a folder of photos into an index, nor `check` answer "unique" from an index
        made on the spot. An index is made only in a missing or empty folder."""
        from urllib.parse import urlparse

        from phashdb.embedded import DATABASE_FILE
        from phashdb.errors import StoreError
        from phashdb.index import default_location

        url = str(self.db or default_location())
        scheme = urlparse(url).scheme
        if scheme not in ("", "file"):
            return
        folder = Path(urlparse(url).path if scheme == "file" else url).expanduser()
        if (folder / DATABASE_FILE).is_file():
            return
        if folder.exists() and not folder.is_dir():
            raise StoreError(f"not a phashdb index: {folder} (a file, not a folder)")
        try:
            # The default folder also holds the trash folders of HBase indexes (hbase-HOST-...).
            others = [p for p in folder.iterdir() if not p.name.startswith("hbase-")]
        except FileNotFoundError:
            others = []
        except OSError as e:
            raise StoreError(f"cannot read the index folder {folder}: {e.strerror or e}") from e
        if others:
            raise StoreError(f"not a phashdb index: {folder} (it holds other files)")
        if not create:
            raise StoreError(
                f"no index at {folder}: create it with `phashdb init`, or store images with "
                "`phashdb add` or `phashdb ingest`"
            )


class Cli(click.Group):
    """Turns phashdb's errors into one line on stderr and exit code 2 (tracebacks: --debug)."""

    def invoke(self, ctx: click.Context):
        from phashdb.errors import Error

        try:
            return super().invoke(ctx)
        except (Error, ValueError) as e:
            if ctx.obj is not None and ctx.obj.debug:
                raise
            click.echo(f"phashdb: error: {_shown(e)}", err=True)
            ctx.exit(EXIT_ERROR)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as e:
            if isinstance(e, BrokenPipeError) and _reader_gone():
                ctx.exit(EXIT_OK)
            # Python's own exit code for a crash is 1, which here means "a duplicate".
            if ctx.obj is not None and ctx.obj.debug:
                raise
            click.echo(
                f"phashdb: error: unexpected {type(e).__name__}: {_shown(e)} (run with --debug for "
                "the traceback, and please report it)", err=True,
            )
            ctx.exit(EXIT_ERROR)


@click.group(cls=Cli, epilog=EXIT_CODES)
@click.option(
    "--db", envvar="PHASHDB_URL", metavar="URL",
    help="The index: a folder for the embedded index (default ~/.local/share/phashdb) or "
    "hbase://HOST:PORT/TABLE. Also read from $PHASHDB_URL.",
)
@click.option("-v", "--verbose", is_flag=True, help="Log what is being done to stderr.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
@click.version_option(package_name="phashdb")
@click.pass_context
def cli(ctx: click.Context, db, verbose, quiet, debug) -> None:
    """Find near-duplicate images by perceptual hash (pHash)."""
    if verbose or debug:
        logging.basicConfig(
            level=logging.DEBUG if debug else logging.INFO, format="phashdb: %(message)s"
        )
    ctx.obj = Options(db, debug, quiet)


threshold_option = click.option(
    "--threshold", "-t", type=click.IntRange(0, 64),
    help="Largest Hamming distance (bits) that counts as a duplicate; default: the index's.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON (see README).")
runner_option = click.option(
    "--runner", "-r", type=click.Choice(["inline", "local", "hadoop", "spark", "emr", "dataproc"]),
    help="Run as a MapReduce job on this mrjob runner (needs phashdb[mr]).",
)


_HBASE_WIDTHS = BandLayout.even(HBASE_BANDS).widths


@cli.command()
@threshold_option
@click.option(
    "--bands", metavar="W,W,...",
    help="HBase: band widths in bits, adding up to 64 (default "
    f"{len(_HBASE_WIDTHS)} bands: {','.join(map(str, _HBASE_WIDTHS))}).",
)
@click.option(
    "--regions-per-band", type=click.IntRange(1, 256), default=6, show_default=True,
    help="HBase: regions each band is pre-split into.",
)
@click.option(
    "--print-schema", is_flag=True,
    help="HBase: print the HBase shell script that creates the tables, and do nothing else.",
)
@click.option(
    "--reach", type=click.IntRange(0, 64),
    help="Largest pHash distance at which the second stage may confirm a duplicate (default 16; "
    "0: off).",
)
@click.option(
    "--variants/--no-variants", default=None,
    help="Whether flipped and rotated copies are looked for (default: yes).",
)
@click.pass_obj
def init(opts: Options, threshold, bands, regions_per_band, print_schema, reach, variants) -> None:
    """Create the index (if missing) and show its settings.

    For HBase, the tables are created pre-split through HBase's Thrift2 server (the URL's
    port, hbase://HOST:9090/TABLE), or run the script that
    --print-schema prints with `hbase shell`."""
    from phashdb.store import backend

    if opts.db and "layout" in backend(opts.db).capabilities:
        from phashdb.hbase import DEFAULT_BANDS, HBaseOptions, create_tables, schema_script

        layout = BandLayout(tuple(int(w) for w in bands.split(","))) if bands else BandLayout.even(DEFAULT_BANDS)
        if print_schema:
            table = HBaseOptions.from_url(opts.db).table
            click.echo(schema_script(table, layout, regions_per_band), nl=False)
            return
        create_tables(opts.db, bands=layout, regions_per_band=regions_per_band)
    elif bands or print_schema:
        raise click.UsageError("--bands and --print-schema are for HBase indexes")
    with opts.open(create=True, threshold=threshold) as index:
        if (threshold, reach, variants) != (None, None, None):
            index.configure(threshold=threshold, reach=reach, variants=variants)
        _print_stats(index.stats())


def _folders_or_urls(ctx, param, values):
    """Local folders or files must exist; hdfs:// URLs are listed by the ingest itself."""
    for value in values:
        if not value.startswith("hdfs://") and not os.path.exists(value):
            raise click.BadParameter(f"{value!r} does not exist", ctx=ctx, param=param)
    return values


@cli.command()
@click.argument("folders", nargs=-1, required=True, callback=_folders_or_urls)
@click.option("--workers", "-j", type=click.IntRange(1), help="Processes (default: all cores).")
@runner_option
@click.option(
    "--load", type=click.Choice(["hfile", "online"]), default="hfile", show_default=True,
    help="With --runner and an HBase index: load through HFiles (HBase's bulk load) or by "
    "the tasks' puts.",
)
@json_option
@click.pass_obj
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

            report = mr.ingest(index, folders, runner, load=load)
        else:
            with _progress(opts, len(find_images(folders)), "hashing") as bar:
                report = run(index, folders, workers=workers, progress=bar.update)
    if not (report.added or report.skipped or report.duplicates or report.failed):
        click.echo(_shown(f"phashdb: no image files found under {', '.join(folders)}"), err=True)
    if as_json:
        click.echo(json.dumps(report.to_json()))
    else:
        for _path, error in report.failed:
            click.echo(f"failed: {_shown(error)}", err=True)
        click.echo(
            f"{report.added} added, {report.skipped} skipped, "
            f"{report.duplicates} duplicates, {len(report.failed)} failed"
        )
    if report.failed:
        sys.exit(EXIT_ERROR)


@cli.command()
@click.argument("folders", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--to", "target", required=True, help="Folder for the packs: hdfs:// or local.")
@click.option("--pack-mb", type=click.IntRange(1), default=256, show_default=True)
def pack(folders, target, pack_mb) -> None:
    """Pack the images under FOLDERS into tar files of about --pack-mb each, for HDFS: one
    NameNode object per pack, not per image. `ingest` reads the images in them."""
    from phashdb.hdfs import write_packs
    from phashdb.ingest import find_images

    images = find_images(folders)
    packs = write_packs(images, target, pack_bytes=pack_mb << 20)
    click.echo(f"{len(images)} images in {len(packs)} packs under {target}")


@cli.command()
@click.argument("images", nargs=-1, required=True)
@threshold_option
@json_option
@click.pass_obj
def check(opts: Options, images, threshold, as_json) -> None:
    """Say whether each image duplicates a stored one; nothing is stored."""
    with opts.open() as index:
        _report(opts, images, lambda img: index.check(img, threshold=threshold), as_json)


@cli.command()
@click.argument("images", nargs=-1, required=True)
@click.option(
    "--on-duplicate", type=click.Choice(["ask", "keep", "trash", "skip"]),
    help="What to do with a duplicate: ask; keep it (stored as a known duplicate); move it to "
    "the trash; or skip it (left where it is, not stored). Default: ask on a terminal; keep "
    "when stdin is not one (a script, cron, a pipe), where nothing is ever asked.",
)
@threshold_option
@json_option
@click.pass_obj
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
                _say(as_json, _shown(f"{img}: moved from {was}, its record follows it"))
            return admitted.verdict

        def act(img, verdict):
            """(the verdict now, what was done, its JSON fields) for a duplicate just shown."""
            action = on_duplicate
            if action == "ask":
                action = click.prompt(
                    f"{_shown(img)}: keep it or move it to the trash?",
                    type=click.Choice(["keep", "trash", "skip"]), default="skip", err=True,
                )  # fmt: skip
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


@cli.command()
@click.argument("image")
@click.option("--top", "-k", type=click.IntRange(1), default=5, show_default=True)
@json_option
@click.pass_obj
def similar(opts: Options, image, top, as_json) -> None:
    """The stored images nearest to IMAGE, nearest first."""
    with opts.open() as index:
        found = index.similar(image, top=top)
    if as_json:
        click.echo(json.dumps([{"id": m.id, "path": m.path, "distance": m.distance} for m in found]))
    for m in [] if as_json else found:
        click.echo(f"{m.distance:2d}  {_shown(m.path or m.id)}")


keep_option = click.option(
    "--keep", "rule", type=click.Choice(["best", "oldest", "newest", "largest", "pixels"]),
    default="best", show_default=True,
    help="Which image of a group to keep: best (camera EXIF, taken first, most pixels, oldest "
    "file: see docs/keeper.md), oldest or newest (file modification time), largest (file "
    "size), pixels (most pixels, then largest file: the former default).",
)


@cli.command()
@threshold_option
@runner_option
@click.option(
    "--apply", "action", type=click.Choice(["trash", "hardlink", "symlink"]),
    help="Keep one image of each group; move the others to the trash, or replace them by a "
    "hard or symbolic link to it.",
)
@keep_option
@click.option("--dry-run", is_flag=True, help="With --apply: say what would be done, do nothing.")
@json_option
@click.pass_obj
def dedupe(opts: Options, threshold, runner, action, rule, dry_run, as_json) -> None:
    """Every group of near-duplicates already in the index (with --runner: as the MapReduce
    dedupe job); with --apply, keep one image of each and deal with the rest."""
    if not action and (dry_run or rule != "best"):
        raise click.UsageError("--keep and --dry-run go with --apply")
    with opts.open() as index:
        if runner:
            from phashdb.mr import run as mr

            groups = mr.dedupe(index, runner, threshold)
        else:
            from phashdb import group_cache

            groups = group_cache.dedupe(index, threshold)
        if action:
            return _apply(opts, index, groups, action, rule, dry_run, as_json)
    if as_json:
        click.echo(json.dumps([_group_json(g) for g in groups]))
        return
    for n, group in enumerate(groups, 1):
        click.echo(f"group {n}: {len(group.images)} images")
        for image in group.images:
            click.echo(f"  {_shown(image.path or image.id)}")
    click.echo(f"{len(groups)} groups, {sum(len(g.images) for g in groups)} images")


@cli.command()
@json_option
@click.pass_obj
def stats(opts: Options, as_json) -> None:
    """What the index holds and how it is set up."""
    with opts.open() as index:
        info = index.stats()
    if as_json:
        click.echo(json.dumps(info))
    else:
        _print_stats(info)


@cli.command()
@click.argument("ids", nargs=-1, required=True)
@click.pass_obj
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
                click.echo(f"removed {_shown(id)} (its uploaded file is in the trash as {trash_id})")
            else:
                click.echo(f"removed {_shown(id)}")
    for id in missing:
        click.echo(f"phashdb: error: no image with id {id!r} in the index", err=True)
    if missing:
        sys.exit(EXIT_ERROR)


@cli.command()
@click.option(
    "--repair", is_flag=True,
    help="Remove what a crashed writer left half-written; rebuild the band tables from the "
    "database (on HBase: gather each band value's cells into one, which single adds spread).",
)
@click.option(
    "--uploads", type=click.Path(exists=True, file_okay=False), metavar="DIR",
    help="Also check the uploads folder of `phashdb serve`: uploads with no record (a kill); "
    "--repair stores each if unique, else removes it.",
)  # fmt: skip
@click.pass_obj
def fsck(opts: Options, repair, uploads) -> None:
    """Check the index: half-written entries, the trash against the index (what a crash left
    half-done), and (embedded index) the database's integrity and that the band tables hold
    exactly its rows; --repair sets right what can be set right."""
    from phashdb.trash import check as check_trash
    from phashdb.uploaded import check as check_uploads

    with opts.open() as index:
        orphans = index.fsck(repair=repair)
        trash_problems = check_trash(index.trash, index=index, repair=repair)
        in_uploads = check_uploads(os.path.abspath(uploads), index, repair=repair) if uploads else []
        damaged = index.damaged_descriptors(repair=repair)
    for id, h in orphans:
        click.echo(f"{'removed' if repair else 'orphan'}: {id} {h:016x}")
    click.echo(f"{len(orphans)} orphaned entries" + (" removed" if repair and orphans else ""))
    for id in damaged:
        # Verdicts treat it as missing (the plain threshold); adding the file again mends it.
        click.echo(f"damaged descriptor{' removed' if repair else ''}: {_shown(id)}")
    if damaged:
        click.echo(f"{len(damaged)} damaged descriptors" + (" removed" if repair else ""))
    for problem in trash_problems:
        click.echo(f"trash: {_shown(problem)}")
    if trash_problems:
        click.echo(f"{len(trash_problems)} trash problems" + (" repaired" if repair else ""))
    for problem in in_uploads:
        click.echo(f"uploads: {_shown(problem)}")
    if (orphans or trash_problems or in_uploads or damaged) and not repair:
        sys.exit(EXIT_DUPLICATE)


def _report(opts: Options, images, verdict_of, as_json: bool, act=None) -> None:
    """Give each image's verdict, then (`act`, for a duplicate not stored) what was done with
    it; exit 1 if any is a duplicate, 2 if any failed."""
    docs, duplicate = [], False

    def one(img):
        verdict = verdict_of(img)
        _say(as_json, _line(img, verdict))
        extra = {}
        if act is not None and verdict.duplicate and not verdict.added:
            verdict, said, extra = act(img, verdict)
            _say(as_json, _shown(f"{img}: {said}"))
        return verdict, {**verdict.to_json(), **extra}

    def done(img, result):
        nonlocal duplicate
        duplicate |= result[0].duplicate
        docs.append(result[1])

    failed = _each(opts, images, one, done)
    if as_json:
        click.echo(json.dumps(docs))
    if failed:
        sys.exit(EXIT_ERROR)
    if duplicate:
        sys.exit(EXIT_DUPLICATE)


def _each(opts: Options, items, action, done) -> bool:
    """Run `action` on each item and `done(item, result)` after it; a phashdb error is one
    line on stderr and the rest go on. Returns whether any failed."""
    from phashdb.errors import Error, StoreError

    failed = False
    for item in items:
        try:
            result = action(item)
        except Error as e:
            if opts.debug:
                raise
            # A storage failure's message names the store, not the input: name both.
            shown = f"{_shown(item)}: {_shown(e)}" if isinstance(e, StoreError) else _shown(e)
            click.echo(f"phashdb: error: {shown}", err=True)
            failed = True
            continue
        done(item, result)
    return failed


def _line(img, verdict) -> str:
    img = _shown(img)
    if not verdict.duplicate:
        return f"{img}: unique" + (" (added)" if verdict.added else "")
    best = verdict.matches[0]
    more = f" and {len(verdict.matches) - 1} more" if len(verdict.matches) > 1 else ""
    kept = " (kept)" if verdict.added else ""
    how = "" if best.variant == "as-is" else f", {best.variant}"
    how += ", the same file" if best.same_file else ""
    return (
        f"{img}: duplicate of {_shown(best.path or best.id)} (distance {best.distance}{how})"
        f"{more}{kept}"
    )


def _shown(text) -> str:
    """`text` (a file name, or a message naming one) fit for one line of a terminal: control
    characters (a newline would split the line) escaped as Python writes them, and bytes of a
    name that is not UTF-8 as \\xNN. JSON output carries names as they are."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(
        c if c.isprintable()
        else f"\\x{ord(c) - 0xDC00:02x}" if 0xDC80 <= ord(c) <= 0xDCFF
        else repr(c)[1:-1]
        for c in text
    )  # fmt: skip


def _say(as_json: bool, text: str) -> None:
    """Human lines go to stdout, or to stderr when stdout carries JSON."""
    click.echo(text, err=as_json)


def _group_json(group) -> dict:
    return {
        "images": [
            {"id": i.id, "path": i.path, "size": i.size, "width": i.width, "height": i.height}
            for i in group.images
        ],
        "pairs": [{"a": a, "b": b, "distance": d} for a, b, d in group.pairs],
    }


def _print_stats(info: dict) -> None:
    for key, value in info.items():
        click.echo(f"{key}: {value}")


class _NoBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def update(self, n: int) -> None:
        pass


def _progress(opts: Options, total: int, label: str):
    if opts.quiet or not sys.stderr.isatty():
        return _NoBar()
    return click.progressbar(length=total, label=label, file=sys.stderr)


# The commands that deal with duplicates once found live beside this module; importing it here,
# once everything it uses is defined, registers them.
from phashdb.cli_cleanup import _apply, report, trash_group, watch

cli.add_command(report)
cli.add_command(watch)
cli.add_command(trash_group)

# The service's commands (serve, review, decisions): they need only the context object.
from phashdb.cli_serve import COMMANDS as _SERVE_COMMANDS

for _command in _SERVE_COMMANDS:
    cli.add_command(_command)


def _reader_gone() -> bool:
    """Whether the reader of stdout went away (`phashdb dedupe | head -1`), not some other
    pipe or socket: then what is still to be written goes nowhere, and the command ends
    quietly, as `ls | head` does."""
    import select

    try:
        poll = select.poll()
        poll.register(sys.stdout.fileno(), select.POLLOUT)
        if not any(events & select.POLLERR for _, events in poll.poll(0)):
            return False
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no file descriptor behind stdout
        return False
    return True


def main() -> None:
    code = EXIT_OK
    try:
        cli(prog_name="phashdb")
    except SystemExit as e:
        code = e.code
    try:  # what is still buffered (the output of a command that ended without error)
        sys.stdout.flush()
    except BrokenPipeError:
        if _reader_gone():
            code = EXIT_OK
    sys.exit(code)

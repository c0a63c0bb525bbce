"""What every command of `phashdb` shares: the context object (`--db` and its rules), the
options several commands take, one-line output, exit codes, and errors turned into one line.
Command modules import this module and the library, never each other."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click

from phashdb.bands import HASH_BITS

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
            click.echo(f"phashdb: error: {shown(e)}", err=True)
            ctx.exit(EXIT_ERROR)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as e:
            if isinstance(e, BrokenPipeError) and reader_gone():
                ctx.exit(EXIT_OK)
            # Python's own exit code for a crash is 1, which here means "a duplicate".
            if ctx.obj is not None and ctx.obj.debug:
                raise
            click.echo(
                f"phashdb: error: unexpected {type(e).__name__}: {shown(e)} (run with --debug for "
                "the traceback, and please report it)",
                err=True,
            )
            ctx.exit(EXIT_ERROR)


class FromLibrary(click.Option):
    """An option whose choices (`type`), help, or default shown in the help (`default_shown`;
    the value is None when not given, left to the library's default: see `given`) come from
    the library, not copies of it: `settings()` returns those attributes. They are read for
    the command's help or when the option is given, not at import: the modules holding them
    load numpy and Pillow (`keep`, `index`), mrjob, the HBase client or the service, which
    `phashdb --help` and `check` must not (tests/test_cli_startup.py)."""

    default_shown = None

    def __init__(self, *args, settings: Callable[[], dict], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._settings: Callable[[], dict] | None = settings

    def _read(self) -> None:
        if self._settings is None:
            return
        try:
            settings = self._settings()
        except ImportError:  # an extra not installed: its command says so when it runs
            return
        for name, value in settings.items():
            setattr(self, name, value)
        self._settings = None

    def handle_parse_result(self, ctx, opts, args):
        if opts.get(self.name) is not None:
            self._read()
        return super().handle_parse_result(ctx, opts, args)

    def get_help_record(self, ctx):
        self._read()
        return super().get_help_record(ctx)

    def shell_complete(self, ctx, incomplete):
        self._read()
        return super().shell_complete(ctx, incomplete)

    def get_help_extra(self, ctx):
        extra = super().get_help_extra(ctx)
        if self.default_shown is not None:
            extra["default"] = str(self.default_shown)
        return extra


def library(module: str, name: str):
    """The constant `name` of the library's module `module` (read when called)."""
    return getattr(importlib.import_module(module), name)


def default_of(function: Callable, name: str):
    """The library's default for `function`'s argument `name`, as its signature gives it."""
    import inspect

    return inspect.signature(function).parameters[name].default


def given(**values) -> dict:
    """The options the user gave (not None): the rest are left to the library's defaults."""
    return {name: value for name, value in values.items() if value is not None}


threshold_option = click.option(
    "--threshold",
    "-t",
    type=click.IntRange(0, HASH_BITS),
    help="Largest Hamming distance (bits) that counts as a duplicate; default: the index's.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON (see README).")
runner_option = click.option(
    "--runner",
    "-r",
    cls=FromLibrary,
    settings=lambda: {"type": click.Choice(library("phashdb.mr.run", "RUNNERS"))},
    help="Run as a MapReduce job on this mrjob runner (needs phashdb[mr]).",
)
keep_option = click.option(
    "--keep",
    "rule",
    cls=FromLibrary,
    settings=lambda: {
        "type": click.Choice(library("phashdb.keep", "KEEP_RULES")),
        "default_shown": library("phashdb.keep", "BEST"),
    },
    help="Which image of a group to keep: best (camera EXIF, taken first, most pixels, oldest "
    "file: see docs/keeper.md), oldest or newest (file modification time), largest (file "
    "size), pixels (most pixels, then largest file: the former default).",
)


def each(opts: Options, items, action, done) -> bool:
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
            text = f"{shown(item)}: {shown(e)}" if isinstance(e, StoreError) else shown(e)
            click.echo(f"phashdb: error: {text}", err=True)
            failed = True
            continue
        done(item, result)
    return failed


def verdict_line(img, verdict) -> str:
    img = shown(img)
    if not verdict.duplicate:
        return f"{img}: unique" + (" (added)" if verdict.added else "")
    best = verdict.matches[0]
    more = f" and {len(verdict.matches) - 1} more" if len(verdict.matches) > 1 else ""
    kept = " (kept)" if verdict.added else ""
    how = "" if best.variant == "as-is" else f", {best.variant}"
    how += ", the same file" if best.same_file else ""
    return (
        f"{img}: duplicate of {shown(best.path or best.id)} (distance {best.distance}{how})"
        f"{more}{kept}"
    )


def shown(text) -> str:
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


def say(as_json: bool, text: str) -> None:
    """Human lines go to stdout, or to stderr when stdout carries JSON."""
    click.echo(text, err=as_json)


def print_stats(info: dict) -> None:
    for key, value in info.items():
        click.echo(f"{key}: {value}")


class _NoBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def update(self, n: int) -> None:
        pass


def progress(opts: Options, total: int | Callable[[], int], label: str):
    """A progress bar on a terminal's stderr; `total` may be a function, called only when a
    bar is shown (counting may cost a walk of the folders)."""
    if opts.quiet or not sys.stderr.isatty():
        return _NoBar()
    total = total() if callable(total) else total
    return click.progressbar(length=total, label=label, file=sys.stderr)


def reader_gone() -> bool:
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

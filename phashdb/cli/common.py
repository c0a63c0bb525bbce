"""What every command of `phashdb` shares: the context object (`--db` and its rules), how
commands declare their options (for `phashdb.cli`'s argparse parser), the options several
commands take, one-line output, questions, progress bars, exit codes, and errors turned into
one line. Command modules import this module and the library, never each other."""

from __future__ import annotations

import importlib
import os
import stat
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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


class UsageError(Exception):
    """A command line that does not say what to do: the command's usage, then this, exit 2."""


class Range:
    """A number within bounds (click's IntRange/FloatRange, worded as they were)."""

    def __init__(self, kind: type = int, low=None, high=None, *, low_open: bool = False) -> None:
        self.kind, self.low, self.high, self.low_open = kind, low, high, low_open
        self.metavar = "INTEGER RANGE" if kind is int else "FLOAT RANGE"

    def __str__(self) -> str:
        low = "" if self.low is None else f"{self.low}{'<' if self.low_open else '<='}"
        if self.high is None:
            return f"x{'>' if self.low_open else '>='}{self.low}"
        return f"{low}x<={self.high}"

    def __call__(self, text: str):
        try:
            value = self.kind(text)
        except ValueError:
            name = "integer" if self.kind is int else "float"
            raise ValueError(f"{text!r} is not a valid {name}.") from None
        low = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        if low or (self.high is not None and value > self.high):
            raise ValueError(f"{value} is not in the range {self}.")
        return value


class Choice:
    """One of a few words (the library's own: see `Param.settings`)."""

    def __init__(self, choices) -> None:
        self.choices = tuple(choices)
        self.metavar = f"[{'|'.join(self.choices)}]"

    def __call__(self, text: str) -> str:
        if text in self.choices:
            return text
        listed = ", ".join(map(repr, self.choices))
        raise ValueError(f"{text!r} is not {'one of ' if len(self.choices) > 1 else ''}{listed}.")


class PathName:
    """A file or folder name, checked as click's Path did: it `exists` if it must; if it
    does, a folder or a file where only one will do, and readable."""

    def __init__(self, *, exists=False, file_okay=True, dir_okay=True) -> None:
        self.exists, self.file_okay, self.dir_okay = exists, file_okay, dir_okay
        self.kind = "file" if not dir_okay else "directory" if not file_okay else "path"
        self.metavar = self.kind.upper()

    def __call__(self, text: str) -> str:
        try:
            mode = os.stat(text).st_mode
        except OSError:
            if not self.exists:
                return text
            raise ValueError(f"{self.kind.title()} {text!r} does not exist.") from None
        wrong = "a file" if stat.S_ISREG(mode) and not self.file_okay else None
        wrong = "a directory" if stat.S_ISDIR(mode) and not self.dir_okay else wrong
        if wrong or not os.access(text, os.R_OK):
            raise ValueError(f"{self.kind.title()} {text!r} is {wrong or 'not readable'}.")
        return text


@dataclass
class Param:
    """An option (`names` start with -: `kind` "value", "flag", or "switch" for --x/--no-x,
    None when neither is given) or an argument (`nargs` "+", "*", "?" or None: one).
    `settings`: what comes from the library, not copies of it: `type` (the choices),
    `default_shown` (the value is None when not given, left to the library's default: see
    `given`) or `help`. Read for the help or when the option is given, not at import: the
    modules holding them load numpy and Pillow (`keep`, `index`), mrjob, the HBase client or
    the service, which `phashdb --help` and `check` must not (tests/test_cli_startup.py)."""

    names: tuple[str, ...]
    dest: str
    kind: str = "value"
    help: str = ""
    type: Callable | None = None
    default: object = None
    default_shown: object = None
    metavar: str | None = None
    required: bool = False
    nargs: str | None = None
    envvar: str | None = None
    settings: Callable[[], dict] | None = None

    def read(self) -> None:
        if self.settings is None:
            return
        try:
            settings = self.settings()
        except ImportError:  # an extra not installed: its command says so when it runs
            return
        for name, value in settings.items():
            setattr(self, name, value)
        self.settings = None


def option(*names: str, dest: str | None = None, flag: bool = False, **how) -> Param:
    """An option: `option("--threshold", "-t", type=Range(int, 0, 64), help=...)`; `flag`:
    on when given; two names "--x", "--no-x" with `switch=True`: on, off or None."""
    kind = "switch" if how.pop("switch", False) else "flag" if flag else "value"
    dest = dest or (names[0] if kind == "switch" else max(names, key=len))
    dest = dest.lstrip("-").replace("-", "_")
    return Param(names, dest, kind, default=False if flag else how.pop("default", None), **how)


def argument(name: str, *, nargs: str | None = None, type: Callable | None = None) -> Param:
    """An argument, shown as NAME (NAME... for `nargs` "+" or "*")."""
    return Param((name.upper(),), name, nargs=nargs, type=type)


@dataclass
class Command:
    """A command: its function `run`, called with the context object and a keyword argument
    per parameter (`Param.dest`), and its help; or a group of `commands` (`phashdb`,
    `phashdb trash`), whose own `run`, if any, makes the context object of its `params`."""

    name: str
    run: Callable | None
    params: tuple[Param, ...] = ()
    help: str = ""
    commands: tuple[Command, ...] = ()


def command(*params: Param, name: str | None = None) -> Callable[[Callable], Command]:
    """Declare a command: `@command(option(...), argument(...))` over its function."""
    return lambda run: Command(name or run.__name__, run, params, run.__doc__ or "")


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


threshold_option = option(
    "--threshold",
    "-t",
    type=Range(int, 0, HASH_BITS),
    help="Largest Hamming distance (bits) that counts as a duplicate; default: the index's.",
)
json_option = option("--json", dest="as_json", flag=True, help="Print JSON (see README).")
runner_option = option(
    "--runner",
    "-r",
    settings=lambda: {"type": Choice(library("phashdb.mr.run", "RUNNERS"))},
    help="Run as a MapReduce job on this mrjob runner (needs phashdb[mr]).",
)
keep_option = option(
    "--keep",
    dest="rule",
    settings=lambda: {
        "type": Choice(library("phashdb.keep", "KEEP_RULES")),
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
            echo(f"phashdb: error: {text}", err=True)
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
    echo(text, err=as_json)


def print_stats(info: dict) -> None:
    for key, value in info.items():
        echo(f"{key}: {value}")


def echo(text: str = "", *, err: bool = False, nl: bool = True) -> None:
    """A line on stdout (stderr: `err`), flushed at once, as click.echo did: a reader of a
    pipe (`watch`'s) sees each line as it comes."""
    stream = sys.stderr if err else sys.stdout
    stream.write(text + "\n" if nl else text)
    stream.flush()


def style(text: str, colour: str) -> str:
    """`text` in `colour` for stdout, if it is a terminal (as click.echo stripped colours)."""
    if not sys.stdout.isatty():
        return text
    code = {"red": 31, "green": 32, "yellow": 33}[colour]
    return f"\x1b[{code}m{text}\x1b[0m"


def aborted() -> None:
    """End as click did when told no (or Ctrl-C at a question): "Aborted!", exit 1."""
    echo("Aborted!", err=True)
    sys.exit(1)


def _ask(question: str) -> str:
    from contextlib import redirect_stdout

    try:
        with redirect_stdout(sys.stderr):  # the question on stderr: stdout may be a pipe
            return input(question)
    except (KeyboardInterrupt, EOFError):
        aborted()


def confirm(question: str) -> None:
    """Ask `question [y/N]: `; anything but yes ends the command ("Aborted!", exit 1)."""
    while True:
        answer = _ask(f"{question} [y/N]: ").strip().lower()
        if answer in ("y", "yes"):
            return
        if answer in ("", "n", "no"):
            aborted()
        echo("Error: invalid input", err=True)


def choose(question: str, choices: tuple[str, ...], default: str) -> str:
    """Ask `question (a, b) [default]: ` until the answer is one of `choices`."""
    while True:
        answer = _ask(f"{question} ({', '.join(choices)}) [{default}]: ") or default
        try:
            return Choice(choices)(answer)
        except ValueError as e:  # worded as an option's choice is
            echo(f"Error: {e}", err=True)


class _Bar:
    """click's progress bar, `label  [####------]   40%  00:01:05`, redrawn in place on
    stderr: the time left at the pace so far, read once a second."""

    def __init__(self, total: int, label: str) -> None:
        self.total, self.label, self.done, self.left, self.drawn = total, label, 0, "", ""
        self.start = self.last = time.time()

    def __enter__(self):
        self.update(0)
        return self

    def __exit__(self, *exc):
        sys.stderr.write("\n")

    def update(self, n: int) -> None:
        self.done += n
        part = min(self.done / (self.total or 1), 1.0)
        if time.time() - self.last >= 1.0 and part < 1.0:
            self.last, pace = time.time(), (time.time() - self.start) / max(self.done, 1)
            self.left = time.strftime("  %H:%M:%S", time.gmtime(pace * (self.total - self.done)))
        bar = "#" * int(part * 30) + "-" * (30 - int(part * 30))
        line = f"\r{self.label}  [{bar}]  {int(part * 100):3}%{self.left if part < 1 else ''}  "
        if line != self.drawn:  # once per change, not per image
            self.drawn = line
            sys.stderr.write(line)
            sys.stderr.flush()


def progress(opts: Options, total: int | Callable[[], int], label: str):
    """A progress bar on a terminal's stderr; `total` may be a function, called only when a
    bar is shown (counting may cost a walk of the folders)."""
    if opts.quiet or not sys.stderr.isatty():
        from contextlib import nullcontext
        from types import SimpleNamespace

        return nullcontext(SimpleNamespace(update=lambda n: None))
    return _Bar(total() if callable(total) else total, label)

"""The `phashdb` command: parse, call the library, format. This module assembles the group and
parses its command lines with argparse (the standard library's: click's import was a tenth of
a `phashdb check`); the commands live in one module per kind (`index_cmds`: fill and ask the
index; `cleanup`: the duplicates already stored; `admin`: look after the index; `serve`: the
service), all sharing `common` and nothing else of each other. What users see stays what
click showed: usage errors as `Usage:`, `Try ... --help` and `Error:` lines, exit 2."""

from __future__ import annotations

import argparse
import gc
import inspect
import logging
import os
import sys

# numpy's OpenBLAS starts a thread per core that spins while the first waits: for the 8x32
# matrices hashing multiplies that is pure cost, a third of a re-run's CPU time, and in every
# ingest worker it competes with the other workers. Set before numpy is first imported; a
# user's own setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from phashdb.cli import admin, cleanup, index_cmds, serve
from phashdb.cli.common import (
    EXIT_CODES,
    EXIT_ERROR,
    EXIT_OK,
    Command,
    Options,
    Param,
    Range,
    UsageError,
    echo,
    option,
    shown,
)


def _start(db, verbose, quiet, debug) -> Options:
    if verbose or debug:
        logging.basicConfig(
            level=logging.DEBUG if debug else logging.INFO, format="phashdb: %(message)s"
        )
    return Options(db, debug, quiet)


PHASHDB = Command(
    "phashdb",
    _start,
    (
        option(
            "--db",
            envvar="PHASHDB_URL",
            metavar="URL",
            help="The index: a folder for the embedded index (default ~/.local/share/phashdb) "
            "or hbase://HOST:PORT/TABLE. Also read from $PHASHDB_URL.",
        ),
        option("-v", "--verbose", flag=True, help="Log what is being done to stderr."),
        option("-q", "--quiet", flag=True, help="No progress bars."),
        option("--debug", flag=True, help="Show tracebacks on errors."),
    ),
    "Find near-duplicate images by perceptual hash (pHash).",
    (
        index_cmds.init, index_cmds.ingest, index_cmds.pack, index_cmds.check, index_cmds.add,
        index_cmds.similar, cleanup.dedupe, admin.stats, admin.remove, admin.fsck, cleanup.report,
        cleanup.watch, cleanup.trash_group, *serve.COMMANDS,
    ),
)  # fmt: skip


def cli(args: list[str] | None = None, prog_name: str = "phashdb") -> None:
    """Run `phashdb ARGS` (sys.argv's by default); ends with SystemExit, as click's did."""
    sys.exit(run(PHASHDB, sys.argv[1:] if args is None else [str(a) for a in args], prog_name))


def main() -> None:
    code = EXIT_OK
    try:
        cli(prog_name="phashdb")
    except SystemExit as e:
        code = e.code
    try:  # what is still buffered (the output of a command that ended without error)
        sys.stdout.flush()
    except BrokenPipeError:
        if reader_gone():
            code = EXIT_OK
    # The command is done. What the interpreter's exit would still do is collect every object
    # numpy, Pillow and the standard library made, in full collections (~15 ms of a 0.15 s `check`; its
    # memory goes back with the process either way). Frozen, they are left out of those; exit
    # handlers, the streams' flush and objects freed by their last reference run as before.
    gc.freeze()
    sys.exit(code)


def run(top: Command, args: list[str], prog: str) -> int:
    """Parse `args` down to a command and run it; the exit code."""
    where = [top, prog]  # the command whose usage a usage error shows
    try:
        values, rest = parse(top, args, prog)
        node, found = top, values
        while node.commands:
            if not rest and args:
                raise UsageError("Missing command.")
            if not rest:  # as click did: the help, on stderr, exit 2
                echo(_parser(node, prog).format_help(), err=True, nl=False)
                return EXIT_ERROR
            name, *args = rest
            node = next((c for c in node.commands if c.name == name), None)
            if node is None:
                raise UsageError(f"No such command {name!r}.")
            prog = f"{prog} {name}"
            where[:] = node, prog
            found, rest = parse(node, args, prog)
        return _invoke(node, top.run(**values), found)
    except UsageError as e:
        node, prog = where
        echo(f"Usage: {_usage(node, prog)}\nTry '{prog} --help' for help.\n", err=True)
        echo(f"Error: {e}", err=True)
        return EXIT_ERROR
    except KeyboardInterrupt:
        echo("\nAborted!", err=True)
        return 1


def _invoke(command: Command, opts: Options, values: dict) -> int:
    """Turns phashdb's errors into one line on stderr and exit code 2 (tracebacks: --debug)."""
    from phashdb.errors import Error

    try:
        command.run(opts, **values)
    except (Error, ValueError) as e:
        if opts.debug:
            raise
        echo(f"phashdb: error: {shown(e)}", err=True)
        return EXIT_ERROR
    except UsageError:
        raise
    except Exception as e:
        if isinstance(e, BrokenPipeError) and reader_gone():
            return EXIT_OK
        # Python's own exit code for a crash is 1, which here means "a duplicate".
        if opts.debug:
            raise
        echo(
            f"phashdb: error: unexpected {type(e).__name__}: {shown(e)} (run with --debug for "
            "the traceback, and please report it)",
            err=True,
        )
        return EXIT_ERROR
    return EXIT_OK


def parse(node: Command, args: list[str], prog: str = "phashdb") -> tuple[dict, list[str]]:
    """The values of `node`'s parameters in `args` (None for an option not given: see
    `common.given`), and for a group, the rest: a command and its arguments."""
    parser = _parser(node, prog)
    if node.commands:  # a group: its command and what follows it, as they are
        namespace, extra = parser.parse_known_args(args)
    else:  # a command's arguments and options in any order (`check a.jpg -t 3 b.jpg`)
        cut = args.index("--") if "--" in args else len(args)
        namespace, extra = parser.parse_known_intermixed_args(args[:cut])
        extra += _after_dashes(node, namespace, args[cut + 1 :])
    if extra and extra[0].startswith("-"):
        raise UsageError(f"No such option {extra[0]!r}.")
    if extra:
        s = "s" if len(extra) > 1 else ""
        raise UsageError(f"Got unexpected extra argument{s} ({' '.join(extra)})")
    for p in node.params:  # checked here, not by argparse: an unknown option is said first
        if getattr(namespace, p.dest) not in (None, []):
            continue
        if p.required:
            raise UsageError(f"Missing option {max(p.names, key=len)!r}.")
        if _positional(p) and p.nargs in ("+", None):
            raise UsageError(f"Missing argument {_label(p)}.")
    values = {p.dest: convert(p, getattr(namespace, p.dest)) for p in node.params}
    return values, getattr(namespace, "command", [])


def _after_dashes(node: Command, namespace, rest: list[str]) -> list[str]:
    """What follows `--` goes to the arguments, in order (argparse's intermixed parsing
    would take `check -- -a.jpg` for an option); returns what is left over."""
    for p in filter(_positional, node.params):
        if p.nargs in ("+", "*"):
            setattr(namespace, p.dest, [*getattr(namespace, p.dest), *rest])
            rest = []
        elif getattr(namespace, p.dest) is None and rest:
            setattr(namespace, p.dest, rest.pop(0))
    return rest


class _Parser(argparse.ArgumentParser):
    node: Command

    def format_help(self) -> str:
        self.epilog = _epilog(self.node)  # a group's commands: listed only when shown
        return super().format_help()

    def error(self, message: str):
        """argparse's complaints in click's words, where click had them."""
        said, _, what = message.partition(": ")
        name = max(said.removeprefix("argument ").split("/"), key=len)
        if what == "expected one argument":
            raise UsageError(f"Option {name!r} requires an argument.")
        if what.startswith("ignored explicit argument"):
            raise UsageError(f"Option {name!r} does not take a value.")
        raise UsageError(message)


def _parser(node: Command, prog: str) -> _Parser:
    parser = _Parser(
        prog=prog, usage=_usage(node, prog), description=inspect.cleandoc(node.help),
        formatter_class=_Help, add_help=False, allow_abbrev=False,
    )  # fmt: skip
    parser.node = node
    options = parser.add_argument_group("Options")
    for p in node.params:
        if _positional(p):  # one or many, but optional to argparse: see parse
            nargs = "?" if p.nargs in ("?", None) else "*"
            parser.add_argument(p.dest, nargs=nargs, metavar=p.names[0], help=argparse.SUPPRESS)
            continue
        how = {"flag": {"action": "store_true"}, "switch": {"action": _Switch}}.get(p.kind, {})
        # Short names first in the help, as click showed them.
        names = sorted(p.names, key=lambda n: n.startswith("--"))
        options.add_argument(*names, dest=p.dest, help=p.help or "-", **how).param = p
    if node is PHASHDB:
        options.add_argument("--version", action=_Version, help="Show the version and exit.")
    options.add_argument("--help", action="help", help="Show this message and exit.")
    if node.commands:
        parser.add_argument("command", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def _positional(param: Param) -> bool:
    return not param.names[0].startswith("-")


def _usage(node: Command, prog: str) -> str:
    shown = {"+": "{}...", "*": "[{}]...", "?": "[{}]"}
    words = [shown.get(p.nargs, "{}").format(p.names[0]) for p in node.params if _positional(p)]
    return " ".join([prog, "[OPTIONS]", *words, *(["COMMAND [ARGS]..."] * bool(node.commands))])


def _epilog(node: Command) -> str | None:
    """A group's commands, each with the first sentence of its help."""
    if not node.commands:
        return None
    import shutil
    import textwrap

    width = max(len(c.name) for c in node.commands) + 2
    room = min(shutil.get_terminal_size().columns, 100) - width - 4
    lines = ["Commands:"]
    for c in sorted(node.commands, key=lambda c: c.name):
        first = " ".join(c.help.split("\n\n")[0].split()).split(". ")[0].rstrip(".") + "."
        lines.append(f"  {c.name:<{width}}{textwrap.shorten(first, room, placeholder='...')}")
    return "\n".join(lines + (["", EXIT_CODES] if node is PHASHDB else []))


def convert(param: Param, value):
    """The value given (a string, or a list for an argument of many), checked and converted
    by the parameter's type; or its environment variable's value; or its default."""
    if value is None and param.envvar:
        value = os.environ.get(param.envvar) or None
    if value is None:
        value = param.default  # checked too, as click did (`report -o`'s: not a folder)
    if value is None:
        return None
    param.read()
    if param.type is None:
        return value
    try:
        return [param.type(v) for v in value] if isinstance(value, list) else param.type(value)
    except ValueError as e:
        raise UsageError(f"Invalid value for {_label(param)}: {e}") from None


def _label(param: Param) -> str:
    """How click named a parameter in an error: '--threshold' / '-t', or 'FOLDERS...'."""
    if _positional(param):
        return repr(param.names[0] + ("..." if param.nargs in ("+", "*") else ""))
    return " / ".join(map(repr, param.names))


def extras(param: Param) -> dict[str, str]:
    """What the help shows in brackets after an option's text: its default, its range."""
    param.read()
    shown = {}
    if param.default_shown is not None:
        shown["default"] = str(param.default_shown)
    if isinstance(param.type, Range):
        shown["range"] = str(param.type)
    if param.required:
        shown["required"] = "required"
    return shown


class _Help(argparse.HelpFormatter):
    """click's help in argparse's layout: `Usage:`, the command's text in paragraphs, and for
    each option, its metavar (its choices: read from the library only now) and its text
    with the default and range in brackets."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=34)  # click's column for the option texts

    def add_usage(self, usage, actions, groups, prefix=None):
        super().add_usage(usage, actions, groups, "Usage: ")

    def _fill_text(self, text, width, indent):
        """Each paragraph filled to the width, but for one of indented lines (a list)."""
        import textwrap

        paragraphs = text.split("\n\n")
        fill = {"width": width - 2, "initial_indent": "  ", "subsequent_indent": "  "}
        return "\n\n".join(
            p if "\n  " in p else textwrap.fill(" ".join(p.split()), **fill) for p in paragraphs
        )

    def _get_help_string(self, action):
        param = getattr(action, "param", None)
        if param is None:
            return action.help
        said = [f"default: {v}" if k == "default" else v for k, v in extras(param).items()]
        text = "  ".join(filter(None, [param.help, f"[{'; '.join(said)}]" if said else ""]))
        return text.replace("%", "%%")

    def _format_action_invocation(self, action):
        if not action.option_strings or action.nargs == 0:
            return super()._format_action_invocation(action)
        return f"{', '.join(action.option_strings)} {self._format_args(action, action.dest)}"

    def _metavar_formatter(self, action, default_metavar):
        param = getattr(action, "param", None)
        if param is None or param.kind != "value":
            return super()._metavar_formatter(action, default_metavar)
        param.read()
        metavar = param.metavar or getattr(param.type, "metavar", "TEXT")
        return lambda size: (metavar,) * size


class _Switch(argparse.Action):
    """--x/--no-x: on or off (None, left to the library, when neither is given)."""

    def __init__(self, option_strings, dest, **kwargs) -> None:
        super().__init__(option_strings, dest, nargs=0, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, not option_string.startswith("--no-"))


class _Version(argparse.Action):
    def __init__(self, option_strings, dest, **kwargs) -> None:
        super().__init__(option_strings, dest, nargs=0, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        from importlib.metadata import version

        echo(f"{parser.prog}, version {version('phashdb')}")
        parser.exit()


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

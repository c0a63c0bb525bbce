"""The command line as a package: what the commands share lives in one module, no command
module imports another, and the choices and defaults the commands offer are the library's own
(read from it, not copied), both in the help and when a value is given."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import phashdb.cli
from phashdb import apply, hdfs, index, keep, watch
from phashdb.bands import BandLayout
from phashdb.cli import PHASHDB, cli, extras, parse
from phashdb.cli.common import Command, Param
from phashdb.mr import run as mr
from phashdb.serve import ServeConfig

PACKAGE = Path(phashdb.cli.__file__).parent
SHARED = "phashdb.cli.common"


def imported(path: Path) -> set[str]:
    """The modules `path` imports, `from phashdb.cli import x` counted as phashdb.cli.x."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            module = "phashdb.cli" if node.level else node.module
            if node.level and node.module:
                module += f".{node.module}"
            names.add(module)
            if module == "phashdb.cli":
                names |= {f"{module}.{alias.name}" for alias in node.names}
    return names


def test_command_modules_import_only_the_shared_module_of_the_cli():
    commands = sorted(p for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "common"))
    assert len(commands) >= 4
    for path in commands:
        of_cli = {n for n in imported(path) if n.startswith("phashdb.cli")}
        assert of_cli == {SHARED}, path.name
    assert not {n for n in imported(PACKAGE / "common.py") if n.startswith("phashdb.cli")}


def test_no_module_of_the_cli_is_over_400_lines():
    for path in PACKAGE.glob("*.py"):
        assert len(path.read_text().splitlines()) <= 400, path.name


def command(*names: str) -> Command:
    found = PHASHDB
    for name in names:
        found = next(c for c in found.commands if c.name == name)
    return found


def helped(args: list[str], capsys) -> str:
    """What `phashdb ARGS --help` prints (in this process: no option of it was read before)."""
    with pytest.raises(SystemExit) as done:
        cli([*args, "--help"])
    shown = capsys.readouterr()
    assert done.value.code == 0, shown.err
    return " ".join(shown.out.split())


def option(names: tuple[str, ...], name: str, capsys) -> Param:
    """The option `name` of a command, once its help was shown (which reads the library)."""
    helped(list(names), capsys)
    return next(p for p in command(*names).params if p.dest == name)


CHOICES = [
    (("dedupe",), "rule", keep.KEEP_RULES),
    (("report",), "rule", keep.KEEP_RULES),
    (("dedupe",), "action", apply.ACTIONS),
    (("dedupe",), "runner", mr.RUNNERS),
    (("ingest",), "runner", mr.RUNNERS),
    (("ingest",), "load", mr.LOADS),
    (("watch",), "on_duplicate", watch.ON_DUPLICATE),
    (("add",), "on_duplicate", ("ask", *watch.ON_DUPLICATE)),
]


@pytest.mark.parametrize("names, name, choices", CHOICES)
def test_choices_are_the_library_s(names, name, choices, capsys):
    assert tuple(option(names, name, capsys).type.choices) == tuple(choices)
    assert f"[{'|'.join(choices)}]" in helped(list(names), capsys)  # what the help shows


def default(function, name: str):
    return inspect.signature(function).parameters[name].default


DEFAULTS = [  # the command, its option, the library's default, the arguments it needs
    (("dedupe",), "rule", keep.BEST, []),
    (("report",), "rule", keep.BEST, []),
    (("watch",), "on_duplicate", default(watch.watch, "on_duplicate"), ["{tmp}"]),
    (("ingest",), "load", default(mr.ingest, "load"), ["{tmp}"]),
    (("similar",), "top", default(index.Index.similar, "top"), ["x.jpg"]),
    (("pack",), "pack_mb", default(hdfs.write_packs, "pack_bytes") >> 20, ["{tmp}", "--to", "y"]),
    (("serve",), "max_bytes", ServeConfig().max_bytes, []),
    (("serve",), "body_timeout", ServeConfig().body_timeout, []),
]


@pytest.mark.parametrize("names, name, default, args", DEFAULTS)
def test_defaults_shown_are_the_library_s_and_left_to_it(
    names, name, default, args, tmp_path, capsys
):
    """The help shows the library's default; the command gets None when the option is not
    given, and passes nothing, so the library's own default applies (no copy to drift)."""
    found = option(names, name, capsys)
    assert extras(found)["default"] == str(default)
    assert f"default: {default}" in helped(list(names), capsys)
    args = [a.format(tmp=tmp_path) for a in args]
    assert parse(command(*names), args)[0][name] is None


def test_init_help_says_the_library_s_reach_and_band_count(capsys):
    from phashdb.bands import HBASE_BANDS

    shown = helped(["init"], capsys)
    assert f"(default {index.DEFAULT_REACH}; 0: off)" in shown
    widths = ",".join(map(str, BandLayout.even(HBASE_BANDS).widths))
    assert f"(default {HBASE_BANDS} bands: {widths})" in shown


def fresh(*args: str) -> subprocess.CompletedProcess:
    """`phashdb ARGS` in a new process: no help shown before, the option read as it is given."""
    code = "import sys; from phashdb.cli import main; sys.argv[0] = 'phashdb'; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120
    )


def test_a_choice_given_is_checked_against_the_library_s(tmp_path):
    done = fresh("--db", str(tmp_path / "none"), "dedupe", "--keep", "nope")
    assert done.returncode == 2
    listed = ", ".join(repr(rule) for rule in keep.KEEP_RULES)
    assert f"'nope' is not one of {listed}" in done.stderr


def test_keep_without_apply_is_refused_unless_it_is_the_default(run):
    other = next(rule for rule in keep.KEEP_RULES if rule != keep.BEST)
    refused = run("dedupe", "--keep", other)
    assert refused.returncode == 2 and "--keep and --dry-run go with --apply" in refused.stderr
    assert run("dedupe", "--keep", keep.BEST).returncode == 0


def test_print_schema_without_regions_per_band_takes_the_library_s_default():
    from phashdb.hbase import DEFAULT_BANDS, DEFAULT_REGIONS_PER_BAND, schema_script

    done = fresh("--db", "hbase://h:9090/pics", "init", "--print-schema")
    assert done.returncode == 0, done.stderr
    layout = BandLayout.even(DEFAULT_BANDS)
    assert done.stdout == schema_script("pics", layout, DEFAULT_REGIONS_PER_BAND)

"""The command line as users see it, parsed by argparse since issue 25 and kept as click showed
it: usage errors (a `Usage:` line, an `Error:` line naming the bad value, exit 2), arguments
and options in any order and after `--`, `--version`, questions, Ctrl-C's "Aborted!", the
progress bar on a terminal, colours only on one; and no click imported anywhere."""

from __future__ import annotations

import ast
import json
import os
import pty
import shutil
import signal
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import pytest
from conftest import PHASHDB, run_cli

import phashdb
from phashdb.cli import PHASHDB as GROUP
from phashdb.cli import cli
from phashdb.watch import ON_DUPLICATE

PACKAGE = Path(phashdb.__file__).parent

USAGE_ERRORS = [  # the arguments, the usage line, the error line
    (["check", "-t", "70", "x.jpg"], "phashdb check [OPTIONS] IMAGES...",
     "Invalid value for '--threshold' / '-t': 70 is not in the range 0<=x<=64."),
    (["check", "-t", "many", "x.jpg"], "phashdb check [OPTIONS] IMAGES...",
     "Invalid value for '--threshold' / '-t': 'many' is not a valid integer."),
    (["check", "-t"], "phashdb check [OPTIONS] IMAGES...",
     "Option '--threshold' requires an argument."),
    (["check"], "phashdb check [OPTIONS] IMAGES...", "Missing argument 'IMAGES...'."),
    (["check", "--nosuch", "x.jpg"], "phashdb check [OPTIONS] IMAGES...",
     "No such option '--nosuch'."),
    (["check", "--json=yes", "x.jpg"], "phashdb check [OPTIONS] IMAGES...",
     "Option '--json' does not take a value."),
    (["similar", "a.jpg", "b.jpg"], "phashdb similar [OPTIONS] IMAGE",
     "Got unexpected extra argument (b.jpg)"),
    (["serve", "--body-timeout", "0"], "phashdb serve [OPTIONS]",
     "Invalid value for '--body-timeout': 0.0 is not in the range x>0."),
    (["watch", "{file}"], "phashdb watch [OPTIONS] FOLDER",
     "Invalid value for 'FOLDER': Directory '{file}' is a file."),
    (["ingest", "{tmp}/none"], "phashdb ingest [OPTIONS] FOLDERS...",
     "Invalid value for 'FOLDERS...': '{tmp}/none' does not exist"),
    (["pack", "{tmp}"], "phashdb pack [OPTIONS] FOLDERS...", "Missing option '--to'."),
    (["nosuch"], "phashdb [OPTIONS] COMMAND [ARGS]...", "No such command 'nosuch'."),
    (["-t", "3"], "phashdb [OPTIONS] COMMAND [ARGS]...", "No such option '-t'."),
    (["trash", "burn"], "phashdb trash [OPTIONS] COMMAND [ARGS]...",
     "No such command 'burn'."),
    (["trash", "restore"], "phashdb trash restore [OPTIONS] [IDS]...",
     "give the IDs to restore (see `phashdb trash list`), or --all"),
]  # fmt: skip


@pytest.mark.parametrize("args, usage, error", USAGE_ERRORS)
def test_a_usage_error_names_the_bad_value_under_the_command_s_usage(
    run, tmp_path, args, usage, error
):
    (tmp_path / "a-file").write_text("not a folder")
    where = {"file": str(tmp_path / "a-file"), "tmp": str(tmp_path)}
    result = run(*(a.format(**where) for a in args))
    lines = result.stderr.splitlines()
    assert result.returncode == 2 and result.stdout == "", result
    assert lines[0] == f"Usage: {usage}" and lines[-1] == f"Error: {error.format(**where)}"
    assert "Traceback" not in result.stderr


def test_arguments_and_options_in_any_order_and_after_dashes(run, tmp_path, photos):
    """`check A -t 3 --json -- -B` checks A and the file named -B, as click took it."""
    run("add", photos["camera"])
    shutil.copy(photos["camera"], tmp_path / "-copy.jpg")
    result = run_cli(
        "check", photos["coffee"], "-t", "3", "--json", "--", "-copy.jpg",
        env_url=str(tmp_path / "index"), cwd=tmp_path, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    coffee, copy = json.loads(result.stdout)
    assert result.returncode == 1, result.stderr
    assert (coffee["verdict"], copy["verdict"]) == ("unique", "duplicate")


def test_version_and_the_help_without_a_command(run):
    shown = run("--version")
    assert (shown.returncode, shown.stdout) == (0, f"phashdb, version {version('phashdb')}\n")
    bare = run()  # click's way: the help, on stderr, exit 2
    assert bare.returncode == 2 and bare.stderr.startswith("Usage: phashdb [OPTIONS] COMMAND")
    assert "Exit codes" in bare.stderr and bare.stdout == ""


def every_command(group=GROUP, names=()):
    for command in group.commands:
        yield (*names, command.name), command
        yield from every_command(command, (*names, command.name))


COMMANDS = list(every_command())


@pytest.mark.parametrize("names, command", COMMANDS, ids=[" ".join(n) for n, _ in COMMANDS])
def test_every_help_gives_the_usage_the_text_and_every_option(names, command, capsys):
    with pytest.raises(SystemExit) as done:
        cli([*names, "--help"])
    out = capsys.readouterr().out
    assert done.value.code == 0 and out.startswith(f"Usage: phashdb {' '.join(names)} [OPTIONS]")
    assert " ".join(command.help.split()[:6]) in " ".join(out.split())
    for param in command.params:
        assert all(name in out for name in param.names), param.names
    for sub in command.commands:
        assert f"  {sub.name} " in out


def _sigint_as_on_a_terminal() -> None:
    """Ctrl-C's default action: a shell's background job (pytest run with &) starts with
    SIGINT ignored, which its children would inherit."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def reading_stdin(pid: int) -> bool:
    """Whether the process waits in read(2) of its stdin (Linux's /proc/PID/syscall: the
    call's number, 0 on x86-64 and 63 on arm64, then its first argument, the descriptor)."""
    return Path(f"/proc/{pid}/syscall").read_text().split()[:2] in (["0", "0x0"], ["63", "0x0"])


def typed(*args: str, keys: bytes, env_url: str, signal_at: str | None = None):
    """`phashdb ARGS` with stdin a terminal on which `keys` are typed; with `signal_at`,
    Ctrl-C (SIGINT) once that text (a question) is on stderr and the answer is waited for
    (a signal just before the read would wait for it, as it did under click)."""
    primary, secondary = pty.openpty()
    env = {**os.environ, "PHASHDB_URL": env_url}
    process = subprocess.Popen(
        [PHASHDB, *args], stdin=secondary, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=env, preexec_fn=_sigint_as_on_a_terminal,
    )  # fmt: skip
    os.close(secondary)
    said = b""
    if signal_at is None:
        os.write(primary, keys)
    else:
        while signal_at.encode() not in said:  # the question is asked: now interrupt it
            chunk = os.read(process.stderr.fileno(), 4096)
            assert chunk, said
            said += chunk
        while not reading_stdin(process.pid):
            time.sleep(0.01)
        process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    os.close(primary)
    return process.returncode, out.decode(), (said + err).decode()


def test_ctrl_c_at_a_question_ends_with_aborted_and_does_nothing(tmp_path, photos, run):
    run("add", photos["camera"])
    upload = tmp_path / "upload.jpg"
    shutil.copy(photos["camera"], upload)
    code, _, err = typed(
        "add", upload, keys=b"", env_url=str(tmp_path / "index"),
        signal_at="keep it or move it to the trash?",
    )  # fmt: skip
    assert code == 1 and err.endswith("Aborted!\n") and "Traceback" not in err
    assert upload.exists() and json.loads(run("stats", "--json").stdout)["images"] == 1


def test_a_question_is_asked_again_until_answered(tmp_path, photos, run):
    run("add", photos["camera"])
    upload = tmp_path / "upload.jpg"
    shutil.copy(photos["camera"], upload)
    code, out, err = typed("add", upload, keys=b"burn\nskip\n", env_url=str(tmp_path / "index"))
    listed = ", ".join(map(repr, ON_DUPLICATE))
    assert f"keep it or move it to the trash? ({', '.join(ON_DUPLICATE)}) [skip]: " in err
    assert f"Error: 'burn' is not one of {listed}." in err
    assert code == 1 and "skipped (left where it is, not stored)" in out and upload.exists()


@pytest.mark.parametrize("keys, code", [(b"maybe\nn\n", 1), (b"y\n", 0)])
def test_trash_empty_asks_yes_or_no(tmp_path, photos, near_copies, run, keys, code):
    upload = tmp_path / "upload.jpg"
    shutil.copy(near_copies["camera"], upload)
    run("add", photos["camera"])
    run("add", "--on-duplicate", "trash", upload)
    done, out, err = typed("trash", "empty", keys=keys, env_url=str(tmp_path / "index"))
    assert done == code and "for good? [y/N]: " in err, err
    assert ("Error: invalid input" in err) == keys.startswith(b"maybe")
    assert err.endswith("Aborted!\n") == (code == 1)
    assert len(json.loads(run("trash", "list", "--json").stdout)) == (1 if code else 0)


def stderr_on_a_terminal(*args: str, env_url: str) -> str:
    """What `phashdb ARGS` wrote on its stderr, a terminal (a pseudo-terminal)."""
    primary, secondary = pty.openpty()
    env = {**os.environ, "PHASHDB_URL": env_url}
    process = subprocess.Popen(
        [PHASHDB, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=secondary,
        env=env,
    )  # fmt: skip
    os.close(secondary)
    said = b""
    while True:  # read as it comes: a full terminal buffer would stop the writer
        try:
            chunk = os.read(primary, 4096)
        except OSError:  # EIO: the writer closed its side
            break
        if not chunk:
            break
        said += chunk
    process.wait(timeout=120)
    os.close(primary)
    return said.decode()


def test_the_progress_bar_is_on_a_terminal_s_stderr_and_q_hides_it(tmp_path, photos):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("camera", "coffee", "rocket"):
        shutil.copy(photos[name], folder / f"{name}.jpg")
    shown = stderr_on_a_terminal("ingest", folder, env_url=str(tmp_path / "index"))
    assert "hashing  [" in shown and "100%" in shown and f"[{'#' * 30}]" in shown
    quiet = stderr_on_a_terminal("-q", "ingest", folder, env_url=str(tmp_path / "other"))
    assert "hashing" not in quiet and "[" not in quiet


STYLED = "from phashdb.cli.common import style; print(repr(style('stored', 'green')))"


def test_colours_only_on_a_terminal():
    primary, secondary = pty.openpty()
    subprocess.run([sys.executable, "-c", STYLED], stdout=secondary, check=True, timeout=60)
    os.close(secondary)
    assert os.read(primary, 4096).decode().strip() == repr("\x1b[32mstored\x1b[0m")
    os.close(primary)
    piped = subprocess.run([sys.executable, "-c", STYLED], capture_output=True, text=True)
    assert piped.stdout.strip() == repr("stored")


def test_no_module_of_phashdb_imports_click():
    """uvicorn (the serve extra) still brings click; phashdb itself uses argparse."""
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not [n for n in names if n.split(".")[0] == "click"], path
    pyproject = (PACKAGE.parent / "pyproject.toml").read_text()
    assert '"click' not in pyproject

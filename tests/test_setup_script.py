"""scripts/setup.sh on a fresh VM (issue 22, item 20): while another apt holds its lock (as
unattended upgrades do) it waits, for a bounded time, instead of aborting the install; it
prints its steps and the result, not pip's warnings or Maven's escape codes.

The script runs as it is, in a copy of its folder; what it calls (apt-get, id, the venv's
python and phashdb) are stand-ins on a PATH of their own, so nothing is installed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "setup.sh"
TOOLS = ("bash", "tail", "sed", "grep", "mktemp", "rm", "sleep", "dirname")
ESC = "\x1b"

APT_GET = """#!/bin/sh
echo "apt-get $*" >> "$STUB_CALLS"
if [ -e "$STUB_HELD" ]; then
  echo "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 4242 (unattended-upgr)" >&2
  exit 100
fi
printf '\\033[1mReading package lists...\\033[0m Done\\n'
"""
# pip as setuptools makes it speak when building an editable install, with colours.
PYTHON = """#!/bin/sh
i=0
while [ $i -lt 4 ]; do
  echo "setuptools/dist.py:759: SetuptoolsDeprecationWarning: License classifiers are deprecated." >&2
  i=$((i + 1))
done
if [ -n "$STUB_PIP_FAILS" ]; then
  printf '\\033[31mERROR: No matching distribution found for thriftpy2\\033[0m\\n' >&2
  exit 1
fi
"""
STEPS = ["setup: installing phashdb with its extras into .venv", "setup: installing Chromium (apt)"]
DONE = "phashdb installed in .venv: phashdb, version 9.9"


@pytest.fixture
def setup(tmp_path):
    """(the script's copy, its environment): apt's lock held until the file STUB_HELD goes."""
    tree, bin_ = tmp_path / "tree", tmp_path / "bin"
    (tree / "scripts").mkdir(parents=True)
    shutil.copy(SCRIPT, tree / "scripts" / "setup.sh")
    venv = tree / ".venv" / "bin"
    venv.mkdir(parents=True)
    stubs = {bin_ / "apt-get": APT_GET, bin_ / "id": "#!/bin/sh\necho 0\n",  # root
             venv / "python": PYTHON, venv / "phashdb": "#!/bin/sh\necho 'phashdb, version 9.9'\n"}  # fmt: skip
    bin_.mkdir()
    for path, text in stubs.items():
        path.write_text(text)
        path.chmod(0o755)
    for tool in TOOLS:  # no chromium, mvn or java here: their steps are the apt one and none
        (bin_ / tool).symlink_to(shutil.which(tool))
    env = {"PATH": str(bin_), "TMPDIR": str(tmp_path), "STUB_CALLS": str(tmp_path / "calls"),
           "STUB_HELD": str(tmp_path / "held"), "STUB_PIP_FAILS": ""}  # fmt: skip
    return tree / "scripts" / "setup.sh", env


def apt_calls(env) -> list[str]:
    return Path(env["STUB_CALLS"]).read_text().splitlines()


def test_it_waits_while_another_apt_holds_the_lock_then_goes_on(setup):
    script, env = setup
    Path(env["STUB_HELD"]).touch()
    process = subprocess.Popen(["bash", script], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    said = []
    for line in process.stdout:  # ends at the script's end if it never waits
        said.append(line.rstrip("\n"))
        if "waiting for apt's lock" in line:
            os.unlink(env["STUB_HELD"])  # the other apt is done
            break
    rest, errors = process.communicate(timeout=300)
    assert process.returncode == 0, (said, rest, errors)
    assert said + rest.splitlines() == [
        *STEPS,
        "setup: waiting for apt's lock (another apt is running)",
        DONE,
    ]
    assert errors == ""
    calls = apt_calls(env)
    assert len(calls) >= 3 and calls[-1].endswith("install -y -qq chromium"), calls
    assert all(c.endswith("update -qq") for c in calls[:-1]), calls


def test_the_wait_is_bounded_and_ends_with_apts_own_words(setup):
    script, env = setup
    Path(env["STUB_HELD"]).touch()  # never let go
    done = subprocess.run(["bash", script], env={**env, "APT_LOCK_WAIT": "0"}, text=True,
                          capture_output=True, timeout=300, check=False)  # fmt: skip
    assert done.returncode == 1
    assert done.stdout.splitlines() == STEPS
    assert done.stderr.splitlines() == [
        "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 4242 "
        "(unattended-upgr)",
        "setup: failed: apt-get update -qq",
    ]
    assert apt_calls(env) == ["apt-get -o DPkg::Lock::Timeout=0 update -qq"]


def test_it_prints_its_steps_only_and_a_failing_steps_output_without_escape_codes(setup):
    script, env = setup
    done = subprocess.run(["bash", script], env=env, text=True, capture_output=True,
                          timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (done.stdout.splitlines(), done.stderr) == ([*STEPS, DONE], "")
    failed = subprocess.run(["bash", script], env={**env, "STUB_PIP_FAILS": "1"}, text=True,
                            capture_output=True, timeout=300, check=False)  # fmt: skip
    assert failed.returncode == 1 and ESC not in failed.stderr
    assert failed.stdout.splitlines() == STEPS[:1]
    assert "ERROR: No matching distribution found for thriftpy2" in failed.stderr
    assert failed.stderr.splitlines()[-1].startswith("setup: failed: .venv/bin/python -m pip")

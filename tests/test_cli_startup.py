"""What a command loads: `phashdb --help` neither numpy nor Pillow, `check` none of the
serve, MapReduce or HBase stacks; and numpy's BLAS runs on one thread unless the user says."""

from __future__ import annotations

import json
import os
import subprocess
import sys

LOADED = """
import json, sys
from phashdb.cli import cli
try:
    cli(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def loaded(*args, env=None) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", LOADED, *map(str, args)], capture_output=True, text=True,
        env={**os.environ, **(env or {})}, timeout=120,
    )  # fmt: skip
    names = json.loads(done.stderr.splitlines()[-1])
    return {m.split(".")[0] for m in names} | {m for m in names if m.startswith("phashdb.")}


def test_help_loads_neither_numpy_nor_pillow():
    modules = loaded("--help")
    assert "phashdb" in modules and "click" in modules
    assert not modules & {"numpy", "PIL"}


def test_check_loads_no_service_mapreduce_or_hbase(tmp_path, photos):
    location = tmp_path / "index"
    subprocess.run(
        [sys.executable, "-m", "phashdb", "--db", location, "add", photos["rocket"]], check=True,
        capture_output=True,
    )  # fmt: skip
    modules = loaded("--db", location, "check", photos["rocket"])
    assert {"numpy", "PIL", "sqlite3"} <= modules
    assert not modules & {"uvicorn", "starlette", "fastapi", "mrjob", "thriftpy2", "happybase"}
    assert not modules & {"phashdb.serve", "phashdb.mr", "phashdb.hbase"}


def test_blas_runs_on_one_thread_unless_the_user_says(tmp_path):
    show = "import os, phashdb.cli; print(os.environ['OPENBLAS_NUM_THREADS'])"
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    mine = subprocess.run([sys.executable, "-c", show], env=env, capture_output=True, text=True)
    assert mine.stdout.strip() == "1"
    env["OPENBLAS_NUM_THREADS"] = "2"
    theirs = subprocess.run([sys.executable, "-c", show], env=env, capture_output=True, text=True)
    assert theirs.stdout.strip() == "2"


def test_a_rerun_over_stored_files_loads_neither_numpy_nor_pillow(tmp_path, photos):
    """The daily re-run (`ingest` of a folder already stored, then `dedupe` from its kept
    groups) asks the index about files and records only: no image is read."""
    location, folder = tmp_path / "index", tmp_path / "photos"
    folder.mkdir()
    for name in ("rocket", "camera"):
        (folder / f"{name}.jpg").write_bytes(open(photos[name], "rb").read())
    for args in (("ingest", folder), ("dedupe", "--json")):
        subprocess.run(
            [sys.executable, "-m", "phashdb", "--db", location, *args], check=True,
            capture_output=True,
        )  # fmt: skip
    for args in (("-q", "ingest", folder), ("dedupe", "--json")):
        modules = loaded("--db", location, *args)
        assert {"phashdb.index", "sqlite3"} <= modules
        assert not modules & {"numpy", "PIL", "multiprocessing"}, args


def test_a_dedupe_after_a_removal_or_a_decision_loads_no_numpy(tmp_path, photos):
    """Nothing to search: the kept links of the images left are grouped again as they are."""
    location, folder = tmp_path / "index", tmp_path / "photos"
    folder.mkdir()
    for name in ("rocket", "camera", "coffee"):
        (folder / f"{name}.jpg").write_bytes(open(photos[name], "rb").read())
    phashdb = [sys.executable, "-m", "phashdb", "--db", location]
    subprocess.run([*phashdb, "ingest", folder], check=True, capture_output=True)
    subprocess.run([*phashdb, "dedupe", "--json"], check=True, capture_output=True)
    rocket, camera, coffee = (str(folder / f"{n}.jpg") for n in ("rocket", "camera", "coffee"))
    for change in (["remove", rocket], ["decisions", "add", camera, coffee]):
        subprocess.run([*phashdb, *change], check=True, capture_output=True)
        modules = loaded("--db", location, "dedupe", "--json")
        assert "phashdb.group_cache" in modules
        assert not modules & {"numpy", "PIL"}, change

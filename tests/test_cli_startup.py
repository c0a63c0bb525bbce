"""What a command loads: `phashdb --help` neither numpy nor Pillow, `check` none of the
serve, MapReduce or HBase stacks; and numpy's BLAS runs on one thread unless the user says."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import skimage_photo
from PIL import Image as PILImage

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
    assert "phashdb" in modules and "argparse" in modules
    assert not modules & {"numpy", "PIL", "click"}


def test_check_loads_no_service_mapreduce_or_hbase(tmp_path, photos):
    location = tmp_path / "index"
    subprocess.run(
        [sys.executable, "-m", "phashdb", "--db", location, "add", photos["rocket"]], check=True,
        capture_output=True,
    )  # fmt: skip
    modules = loaded("--db", location, "check", photos["rocket"])
    assert {"numpy", "PIL", "sqlite3"} <= modules
    assert not modules & {"uvicorn", "starlette", "fastapi", "mrjob", "thriftpy2", "happybase"}
    assert "click" not in modules  # argparse parses: click's import was a tenth of a check
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


PLUGINS = """
import json, sys
from PIL import Image
from phashdb.cli import cli
try:
    cli(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(m for m in sys.modules if m.endswith("ImagePlugin"))), file=sys.stderr)
"""


def test_a_check_imports_only_the_plugin_of_its_file_s_format(tmp_path):
    """Pillow's first open imports five format plugins (GIF's with subprocess, PNG's with
    fractions and decimal): a check imports the one its file's leading bytes name."""
    location = tmp_path / "index"
    img = skimage_photo("rocket").convert("RGB")
    for suffix in (".jpg", ".png"):
        img.save(tmp_path / f"rocket{suffix}")
    subprocess.run(
        [sys.executable, "-m", "phashdb", "--db", location, "add", tmp_path / "rocket.png"],
        check=True, capture_output=True,
    )  # fmt: skip
    for name, plugin in (("rocket.jpg", "JpegImagePlugin"), ("rocket.png", "PngImagePlugin")):
        args = ["--db", location, "check", tmp_path / name]
        done = subprocess.run(
            [sys.executable, "-c", PLUGINS, *map(str, args)], capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        assert json.loads(done.stderr.splitlines()[-1]) == [f"PIL.{plugin}"]
        assert "duplicate of" in done.stdout  # the same picture, whatever its format


EVERY_FORMAT = """
import sys
from pathlib import Path
from PIL import Image
from phashdb.source import read_source
folder = Path(sys.argv[1])
for path in sorted(folder.iterdir()):
    print(path.suffix, hex(read_source(str(path)).image.hash))
with Image.open(folder / "a.png") as img:  # the caller's own Pillow use, after ours
    img.save(folder / "again.gif")
    img.save(folder / "again.tiff", format="TIFF")
print(Image.open(folder / "again.gif").format, Image.open(folder / "again.tiff").format)
"""


def test_every_format_reads_after_one_plugin_was_imported_alone(tmp_path):
    """In a new process (where no plugin was imported yet): each format read in turn, the
    same hash as the same picture saved losslessly, and Pillow's own open and save after."""
    img = PILImage.new("RGB", (64, 48), (200, 40, 90))
    img.paste((20, 20, 220), (8, 8, 40, 30))
    for suffix in (".jpg", ".png", ".gif", ".bmp", ".tif", ".webp"):
        options = {"quality": 100} if suffix == ".jpg" else {"lossless": True}
        img.save(tmp_path / f"a{suffix}", **(options if suffix in (".jpg", ".webp") else {}))
    done = subprocess.run(
        [sys.executable, "-c", EVERY_FORMAT, str(tmp_path)], capture_output=True, text=True,
        timeout=120, check=True,
    )  # fmt: skip
    *hashes, formats = done.stdout.splitlines()
    assert [line.split()[0] for line in hashes] == [".bmp", ".gif", ".jpg", ".png", ".tif", ".webp"]
    lossless = {line.split()[1] for line in hashes if not line.startswith((".jpg", ".gif"))}
    assert len(lossless) == 1
    assert formats == "GIF TIFF"


AT_EXIT = """
import atexit, gc, sys
from phashdb.cli import main
atexit.register(lambda: print("frozen at exit:", gc.get_freeze_count() > 0, file=sys.stderr))
sys.argv[0] = "phashdb"
main()
"""


def test_a_command_leaves_what_it_loaded_out_of_the_exit_s_collections(tmp_path, photos):
    """The interpreter's exit would collect every object numpy and Pillow made (~15 ms
    of a check): main freezes them first; exit handlers and the output are as before."""
    location = tmp_path / "index"
    args = ["--db", str(location), "add", str(photos["rocket"])]
    done = subprocess.run(
        [sys.executable, "-c", AT_EXIT, *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "unique" in done.stdout
    assert done.stderr.strip().splitlines()[-1] == "frozen at exit: True"
    again = subprocess.run(
        [sys.executable, "-c", AT_EXIT, "--db", str(location), "check", str(photos["rocket"])],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert again.returncode == 1 and "duplicate of" in again.stdout  # what add stored is there

"""Fixtures shared by the test modules."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image as PILImage
from PIL import ImageEnhance

import phashdb

PHOTO_NAMES = ["astronaut", "camera", "chelsea", "coffee", "rocket", "hubble_deep_field"]


def skimage_photo(name: str) -> PILImage.Image:
    from skimage import data

    return PILImage.fromarray(getattr(data, name)())


@pytest.fixture(scope="session")
def photos(tmp_path_factory) -> dict:
    """Distinct real photos (scikit-image's bundled ones) as JPEG files, by name."""
    folder = tmp_path_factory.mktemp("photos")
    out = {}
    for name in PHOTO_NAMES:
        out[name] = folder / f"{name}.jpg"
        skimage_photo(name).convert("RGB").save(out[name], quality=92)
    return out


@pytest.fixture(scope="session")
def near_copies(tmp_path_factory, photos) -> dict:
    """Each photo cropped by 2%, given more contrast, shrunk and re-encoded at low quality:
    a near-duplicate 2 to 6 bits from its photo, by name."""
    folder = tmp_path_factory.mktemp("copies")
    out = {}
    for name, path in photos.items():
        with PILImage.open(path) as img:
            edited = ImageEnhance.Contrast(img.crop((img.width // 50, 0, *img.size))).enhance(1.3)
            out[name] = folder / f"{name}-copy.jpg"
            edited.resize((edited.width * 3 // 4, edited.height * 3 // 4)).save(
                out[name], quality=40
            )
    return out


REPO = Path(__file__).resolve().parent.parent
# Under CI the real HBase must run: a cluster that cannot start fails the tests, never skips them.
REQUIRE_HBASE = os.environ.get("CI") == "true" or os.environ.get("PHASHDB_REQUIRE_HBASE") == "1"


def started_cluster(tmp_path_factory, name: str, what: str):
    """Builds and starts tests/<name>/cluster.sh, yields its ports (cluster.json), stops it.
    Skipped without Java and Maven, except under CI."""
    script = REPO / "tests" / name / "cluster.sh"
    if not (shutil.which("java") and shutil.which("mvn")):
        if REQUIRE_HBASE:
            pytest.fail(f"the {what} tests need java and mvn")
        pytest.skip(f"no java/mvn: {what} tests skipped (PHASHDB_REQUIRE_HBASE=1 makes this fail)")
    folder = tmp_path_factory.mktemp(name)
    for step in (["build"], ["start", str(folder)]):
        result = subprocess.run([str(script), *step], check=False, capture_output=True, text=True)
        if result.returncode != 0:
            pytest.fail(f"{name} cluster.sh {step[0]} failed:\n{result.stdout}\n{result.stderr}")
    info = json.loads((folder / "cluster.json").read_text())
    yield from until_last_use(f"{name}_cluster", info, [str(script), "stop", str(folder)])


# --- A cluster stops once the last test needing it is done -----------------------------------
# Left to the session's end, a cluster would idle (heartbeats, balancers) beside every later
# test on the two cores, and the clusters would stop one after another in the last test's
# teardown. So each stop runs in the background, those of the clusters below as soon as their
# last test is done (they are never asked for by request.getfixturevalue, so the tests needing
# them are known after collection); the session's end waits for every stop.
STOPPED_EARLY = ("hadoop_cluster", "cluster3")
_last_user: dict[str, str] = {}  # a fixture of STOPPED_EARLY -> the last test needing it
_running: dict[str, list[str]] = {}  # a cluster fixture -> its stop command, while it runs
_stopping: dict[str, subprocess.Popen] = {}  # a stop command's folder -> the stop under way


def until_last_use(fixture: str, value, stop: list[str]):
    """Yield `value`, the session fixture `fixture`'s, its cluster stopped by the command
    `stop` (its last argument the cluster's folder) after the last test needing it, else at the
    session's end; in the background."""
    _running[fixture] = stop
    try:
        yield value
    finally:
        _running.pop(fixture, None)
        stop_in_background(stop)


def stop_in_background(stop: list[str]) -> None:
    if stop[-1] not in _stopping:
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        _stopping[stop[-1]] = subprocess.Popen(stop, **quiet)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    for item in items:  # in the order they run
        for fixture in STOPPED_EARLY:
            if fixture in item.fixturenames:
                _last_user[fixture] = item.nodeid


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    yield  # the test's own fixtures first (they may still use the cluster)
    for fixture in STOPPED_EARLY:
        if fixture in _running and _last_user.get(fixture) == item.nodeid:
            stop_in_background(_running.pop(fixture))


def pytest_sessionfinish(session):
    for stop in _stopping.values():
        stop.wait()


@pytest.fixture(scope="session")
def hbase_cluster(tmp_path_factory) -> dict:
    """A real HBase (ZooKeeper, master, 3 region servers, Thrift1 and Thrift2) started once
    for the session from tests/hbase; its ports (cluster.json). Skipped without Java and
    Maven, except under CI."""
    yield from started_cluster(tmp_path_factory, "hbase", "HBase")


@pytest.fixture(scope="session")
def hadoop_cluster(tmp_path_factory) -> dict:
    """A real Hadoop started once for the session from tests/hadoop: HDFS (a NameNode and 3
    DataNodes, replication 2) and YARN (a ResourceManager and a NodeManager), on loopback; its
    addresses (cluster.json: "namenode" is the hdfs:// URL, "conf_dir" the client config).
    Skipped without Java and Maven, except under CI."""
    yield from started_cluster(tmp_path_factory, "hadoop", "Hadoop")


@pytest.fixture(scope="session")
def hadoop_conf(hadoop_cluster, tmp_path_factory) -> Path:
    """An mrjob.conf whose hadoop runner submits the jobs to the test cluster's YARN (Hadoop
    Streaming), its temp files in HDFS, the tasks running this interpreter (the venv's)."""
    home = REPO / "tests" / "hadoop"
    conf = tmp_path_factory.mktemp("mrjob") / "mrjob.conf"
    conf.write_text(
        json.dumps(
            {
                "runners": {
                    "hadoop": {
                        "hadoop_bin": [
                            str(home / "bin" / "hadoop"),
                            "--config",
                            hadoop_cluster["conf_dir"],
                        ],
                        "hadoop_streaming_jar": str(
                            home / "target" / "lib" / "hadoop-streaming-3.3.4.jar"
                        ),
                        "hadoop_tmp_dir": f"{hadoop_cluster['namenode']}/tmp/mrjob",
                        "python_bin": sys.executable,
                    }
                }
            }
        )
    )
    return conf


PHASHDB = shutil.which("phashdb", path=str(Path(sys.executable).parent)) or "phashdb"


def run_cli(*args, env_url=None, timeout: float | None = 300, **options):
    """Run `phashdb ARGS` in a process of its own, on the index at `env_url` if given;
    `options` (input, stdin) go to subprocess.run."""
    env = {**os.environ, **({"PHASHDB_URL": env_url} if env_url else {})}
    return subprocess.run(
        [PHASHDB, *map(str, args)],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        **options,
    )


def add_by_hash(index, image, radius):
    """Index.add's steps, with a hash instead of a file."""
    with index.store.claim(image, radius) as rivals:
        found = index.matches([image.hash], radius)[0] + rivals
        if not found:
            index.store.put([image])
    return found


@pytest.fixture
def album(tmp_path, photos, near_copies):
    """A folder of three photos, and a folder for what arrives later."""
    folder = tmp_path / "album"
    folder.mkdir()
    for name in ("astronaut", "camera", "rocket"):
        shutil.copy(photos[name], folder / f"{name}.jpg")
    return folder


@pytest.fixture
def start(tmp_path):
    """Start a server over a fresh embedded index (options as ServeConfig's); stopped after."""
    import httpx

    from phashdb.serve import Running, ServeConfig

    servers = []

    def start(**options) -> tuple[Running, httpx.Client]:
        options = {"db": str(tmp_path / "index"), "uploads": tmp_path / "uploads",
                   "workers": 2, **options}  # fmt: skip
        server = Running(ServeConfig(**options))
        servers.append(server)
        return server, httpx.Client(base_url=server.url, timeout=60)

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def client(start):
    return start()[1]


@pytest.fixture
def db(tmp_path):
    """The server's index, opened beside it (as another process would)."""

    def open_index():
        return phashdb.open(tmp_path / "index")

    return open_index


@pytest.fixture
def run(tmp_path):
    """Run `phashdb ARGS` on a fresh embedded index (via $PHASHDB_URL); returns the result.
    The index is made first: reading commands (`check`, `stats`) refuse a missing one."""
    phashdb.open(tmp_path / "index").close()

    def run(*args, input=None, stdin=None):
        if input is None and stdin is None:
            stdin = subprocess.DEVNULL  # not the terminal pytest may run in: nothing is asked
        return run_cli(*args, env_url=str(tmp_path / "index"), input=input, stdin=stdin)

    return run


@pytest.fixture
def run_tty(run):
    """`run`, with stdin a terminal (a pseudo-terminal) on which `keys` were typed first."""
    import pty

    def run_tty(*args, keys=""):
        primary, secondary = pty.openpty()
        try:
            os.write(primary, keys.encode())
            return run(*args, stdin=secondary)
        finally:
            os.close(secondary)
            os.close(primary)

    return run_tty


_tables = itertools.count()


@pytest.fixture
def hbase_url(request, hbase_cluster) -> str:
    """The URL of a fresh pair of pre-split phashdb tables on the test cluster, dropped after
    the test (the cluster's one JVM would run out of heap holding every test's regions)."""
    from phashdb.hbase.keys import DEFAULT_ROW_BITS
    from phashdb.hbase.schema import create_tables, drop_tables

    c = hbase_cluster
    base = f"hbase://{c['host']}:{c['thrift2_port']}/t{next(_tables)}_{os.getpid()}"
    # parametrize("hbase_url", [ROW_BITS, ...], indirect=True) makes tables of other row bits
    create_tables(base, regions_per_band=2, row_bits=getattr(request, "param", DEFAULT_ROW_BITS))
    yield base
    drop_tables(base)


BACKENDS = ["embedded", pytest.param("hbase", marks=pytest.mark.hbase)]


@pytest.fixture(params=BACKENDS)
def reopen(request, tmp_path):
    """A function opening the test's index (fresh for each test, on each backend) again and
    again."""
    if request.param == "hbase":
        location = request.getfixturevalue("hbase_url")
    else:
        location = str(tmp_path / "index")
    return lambda **options: phashdb.open(location, **options)


@pytest.fixture
def index(reopen):
    with reopen() as index:
        yield index


# --- Real photos for anything that hashes: scikit-image's bundled files (inside its wheel,
# --- nothing is downloaded), read by Pillow exactly as they are stored (PNG and JPEG).
PHOTO_FILES = [
    "astronaut.png", "camera.png", "chelsea.png", "coffee.png", "coins.png", "moon.png",
    "rocket.jpg", "motorcycle_left.png", "hubble_deep_field.jpg", "retina.jpg", "brick.png",
    "grass.png", "gravel.png", "page.png", "text.png",
]  # fmt: skip


@pytest.fixture(scope="session")
def photo_files() -> dict[str, str]:
    """The path of each bundled photo file, by name ("astronaut", "rocket", ...)."""
    import skimage.data

    folder = os.path.dirname(skimage.data.__file__)
    return {f.rsplit(".", 1)[0]: os.path.join(folder, f) for f in PHOTO_FILES}


@pytest.fixture(scope="session")
def photo_images(photo_files) -> dict[str, PILImage.Image]:
    """Each bundled photo fully decoded by Pillow (mode RGB or L), by name. Shared: don't edit."""
    out = {}
    for name, path in photo_files.items():
        with PILImage.open(path) as img:
            img.load()
            out[name] = img
    return out

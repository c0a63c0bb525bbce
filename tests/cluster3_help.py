"""The three-host cluster for tests/test_cluster3.py: the cluster fixture (started once per
session), `phashdb serve` in hosts 1 and 2, the stream of uploads, and what the tests ask of the
daemons (JMX, region locations, a host's processes)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import PHOTO_FILES, REPO, REQUIRE_HBASE, until_last_use
from PIL import Image as PILImage
from PIL import ImageEnhance

import phashdb

SCRIPT = REPO / "scripts" / "cluster3.sh"
PHASHDB = str(Path(sys.executable).parent / "phashdb")
TOKEN = "cluster3-test-token"
HTTP_TIMEOUT = 300  # seconds a client waits for one answer: the bound on every call
KILL_AFTER = 12  # acknowledged uploads before the fault
# Photos sent as near-identical pairs to both servers at once (never otherwise uploaded).
PAIR_PHOTOS = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "retina.jpg",
               "hubble_deep_field.jpg"]  # fmt: skip


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(SCRIPT), *args], check=False, capture_output=True, text=True, timeout=900
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"cluster3.sh {args[0]} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


@pytest.fixture(scope="session")
def cluster3(tmp_path_factory) -> dict:
    """The three-host cluster, started once for the session; its cluster.json (with "dir").
    Skipped when not root or without Java and Maven, except under CI. $PHASHDB_CLUSTER3_DIR:
    a cluster already started there is used (and left running)."""
    if running := os.environ.get("PHASHDB_CLUSTER3_DIR"):
        yield {**json.loads((Path(running) / "cluster.json").read_text()), "dir": running}
        return
    if os.geteuid() != 0 or not (shutil.which("java") and shutil.which("mvn")):
        if REQUIRE_HBASE:
            pytest.fail("the three-host tests need root (network namespaces), java and mvn")
        pytest.skip("needs root, java and mvn: three-host tests skipped")
    folder = tmp_path_factory.mktemp("cluster3")
    sh("start", str(folder))
    info = {**json.loads((folder / "cluster.json").read_text()), "dir": str(folder)}
    yield from until_last_use("cluster3", info, [str(SCRIPT), "stop", str(folder)])


@pytest.fixture
def healthy(cluster3) -> dict:
    """The cluster with every daemon running (a test before may have lost a host or a
    daemon): the hosts with a daemon down are restarted."""
    for n in (1, 2, 3):
        sh("heal-host", str(n))
    info = json.loads((Path(cluster3["dir"]) / "cluster.json").read_text())
    for host in info["hosts"]:
        if not all(_alive(d["pid"]) for d in host["daemons"].values()):
            sh("restart-host", str(host["host"]), cluster3["dir"])
    return {
        **json.loads((Path(cluster3["dir"]) / "cluster.json").read_text()),
        "dir": cluster3["dir"],
    }


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def jmx(hostport: str, query: str) -> dict:
    with urllib.request.urlopen(f"http://{hostport}/jmx?qry={query}", timeout=30) as r:
        beans = json.load(r)["beans"]
    return beans[0] if beans else {}


def namenode_state(cluster) -> dict:
    return jmx(cluster["namenode_http"], "Hadoop:service=NameNode,name=FSNamesystem")


def wait_for(what: str, condition, seconds: float = 600):
    """Poll `condition` until true; fail naming `what` after `seconds` (a bound, not a figure
    the test measures)."""
    deadline = time.monotonic() + seconds
    while not (value := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"not within {seconds:.0f} s: {what}")
        time.sleep(1)
    return value


# --- the photos -------------------------------------------------------------------------


def near_copy(img: PILImage.Image, k: int) -> PILImage.Image:
    """A near-identical copy: cropped a little, more contrast, shrunk (k varies the crop)."""
    img = img.convert("RGB")
    edited = ImageEnhance.Contrast(img.crop((img.width // (40 + 10 * k), 0, *img.size))).enhance(
        1.2
    )
    return edited.resize((edited.width * 3 // 4, edited.height * 3 // 4))


@pytest.fixture(scope="module")
def workload(tmp_path_factory) -> list[list[Path]]:
    """The stream: single uploads (scikit-image's photos, whole and in quarters) and, every few
    uploads, a pair of near-identical copies of another photo, to go to both servers at once."""
    from skimage import data

    folder = tmp_path_factory.mktemp("stream")
    singles, pairs = [], []
    for name in PHOTO_FILES:
        img = PILImage.open(Path(data.__file__).parent / name).convert("RGB")
        stem = name.rsplit(".", 1)[0]
        if name in PAIR_PHOTOS:
            pair = []
            for k in (0, 1):
                pair.append(folder / f"{stem}-copy{k}.jpg")
                near_copy(img, k).save(pair[-1], quality=80)
            pairs.append(pair)
            continue
        w, h = img.size
        parts = {"": img, "-a": img.crop((0, 0, w // 2, h // 2)),
                 "-b": img.crop((w // 2, h // 2, w, h))}  # fmt: skip
        for suffix, part in parts.items():
            singles.append([folder / f"{stem}{suffix}.jpg"])
            part.save(singles[-1][0], quality=90)
    stream, every = [], max(1, len(singles) // len(pairs))
    for i, single in enumerate(singles):
        stream.append(single)
        if i % every == every - 1 and pairs:
            stream.append(pairs.pop(0))
    return stream + pairs


# --- phashdb serve on hosts 1 and 2 ------------------------------------------------------


@pytest.fixture
def table(healthy) -> str:
    from phashdb.hbase.schema import create_tables, drop_tables

    name = f"c3t{time.monotonic_ns() % 10**9}"
    base = f"{healthy['thrift2_urls'][0]}/{name}"
    create_tables(base, regions_per_band=2)
    yield name
    try:
        drop_tables(base)
    except phashdb.Error:
        pass


@dataclass
class Server:
    host: int
    url: str
    process: subprocess.Popen


@pytest.fixture
def servers(healthy, table, tmp_path):
    """`phashdb serve` in host 1 and in host 2, each through its own host's Thrift2 gateway."""
    running = []
    for n, thrift in zip((1, 2), healthy["thrift2_urls"]):
        address = f"198.18.0.{n}"
        env = {**os.environ, "PHASHDB_URL": f"{thrift}/{table}?timeout=60&retries=2",
               "PHASHDB_TOKEN": TOKEN}  # fmt: skip
        log = open(tmp_path / f"serve{n}.log", "w")  # noqa: SIM115 - the server's whole life
        process = subprocess.Popen(
            ["ip", "netns", "exec", f"p3h{n}", PHASHDB, "serve", "--host", address, "--port", "8080"],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        running.append(Server(n, f"http://{address}:8080", process))
    for s in running:
        wait_for(f"phashdb serve on host {s.host}", lambda s=s: _healthy(s), 120)
    yield running
    for s in running:
        s.process.terminate()
        s.process.wait(timeout=60)


def _healthy(server: Server) -> bool:
    if server.process.poll() is not None:
        pytest.fail(f"phashdb serve on host {server.host} exited ({server.process.returncode})")
    try:
        with urllib.request.urlopen(f"{server.url}/healthz", timeout=5) as r:
            return r.status == 200
    except OSError:
        return False


@dataclass
class Answer:
    file: Path
    server: int
    status: int | None  # None: no answer within HTTP_TIMEOUT (or the connection failed)
    body: dict = field(default_factory=dict)
    seconds: float = 0.0


def call(server: Server, method: str, path: str, data: bytes | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{server.url}{path}", data=data, method=method,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "image/jpeg"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def upload(server: Server, file: Path) -> Answer:
    t0 = time.monotonic()
    try:
        status, body = call(server, "POST", "/v1/images", file.read_bytes())
    except OSError as e:
        return Answer(file, server.host, None, {"error": repr(e)}, time.monotonic() - t0)
    return Answer(file, server.host, status, body, time.monotonic() - t0)


def run_stream(servers: list[Server], stream: list[list[Path]], acked: threading.Event):
    """Send the stream: singles alternate between the servers; a pair goes to both at once
    (a barrier). `acked` is set at the KILL_AFTER-th 201."""
    answers: list[list[Answer]] = []
    count = 0
    with ThreadPoolExecutor(2) as pool:
        for i, item in enumerate(stream):
            if len(item) == 1:
                got = [upload(servers[i % 2], item[0])]
            else:
                barrier = threading.Barrier(2)

                def send(k, barrier=barrier, item=item):
                    barrier.wait()
                    return upload(servers[k], item[k])

                got = list(pool.map(send, (0, 1)))
            answers.append(got)
            count += sum(a.status == 201 for a in got)
            if count >= KILL_AFTER:
                acked.set()
    return answers


# --- the daemons ------------------------------------------------------------------


def regions_per_host(cluster, table: str) -> dict[str, int]:
    from thriftpy2.rpc import make_client

    from phashdb.hbase.thrift import RECORDS_SUFFIX, hb

    host, port = cluster["thrift2_urls"][0].split("//")[1].split(":")
    client = make_client(hb.THBaseService, host, int(port), timeout=30_000)
    try:
        counts: dict[str, int] = {}
        for t in (table, table + RECORDS_SUFFIX):
            for loc in client.getAllRegionLocations(t.encode()):
                counts[loc.serverName.hostName] = counts.get(loc.serverName.hostName, 0) + 1
        return counts
    finally:
        client.close()


def datanode_blocks(cluster) -> dict[str, int]:
    live = json.loads(jmx(cluster["namenode_http"], "Hadoop:service=NameNode,name=NameNodeInfo")
                      ["LiveNodes"])  # fmt: skip
    return {v["infoAddr"].split(":")[0]: v["numBlocks"] for v in live.values()}


def processes(host: int) -> dict[int, str]:
    """Every process in host N's namespace: pid -> command line."""
    out = subprocess.run(
        ["ip", "netns", "pids", f"p3h{host}"], check=True, capture_output=True, text=True
    )
    found = {}
    for pid in map(int, out.stdout.split()):
        try:
            found[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
    return found


def host_running_a_map(stop: threading.Event) -> int | None:
    """A host on which a map attempt's Python runs and the job's application master does not
    (the loss is a NodeManager's, not the master's); None if `stop` is set first."""
    while not stop.is_set():
        for n in (1, 2, 3):
            commands = processes(n).values()
            if any("--mapper" in c for c in commands) and not any(
                "MRAppMaster" in c for c in commands
            ):
                return n
        time.sleep(0.05)
    return None


def kill_nodemanager(cluster, host: int) -> None:
    """SIGKILL host N's NodeManager and its containers (the processes descended from it); its
    other daemons go on, whatever their pids are now."""
    nm = _daemon(cluster, host, "nm")
    parent = {}
    for pid in processes(host):
        try:
            # /proc/PID/stat: "pid (comm) state ppid ...": the command may hold spaces.
            parent[pid] = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    assert nm in parent, f"host {host}'s NodeManager (pid {nm}) is not running"
    victims, frontier = {nm}, [nm]
    while frontier:
        children = [pid for pid, ppid in parent.items() if ppid in frontier and pid not in victims]
        victims.update(children)
        frontier = children
    for pid in victims:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass


def _daemon(cluster, host: int, name: str) -> int:
    return next(h for h in cluster["hosts"] if h["host"] == host)["daemons"][name]["pid"]


def region_hosts(cluster, table: str) -> set[str]:
    """The hosts serving the table's regions (both tables), read from hbase:meta."""
    return set(regions_per_host(cluster, table))

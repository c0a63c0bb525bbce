"""Ingest from HDFS on YARN, plain files and packs, against the local pool, on the same images.

    python benchmarks/hadoop_ingest.py [--count 5000] [PHOTO_FOLDER ...]

The images are distinct variants (resized and re-encoded JPEGs) of the photos under
PHOTO_FOLDER (e.g. the ~230 of ../shared/photos/build.sh) or of scikit-image's. In one run: the
test cluster of tests/hadoop is started (HDFS: NameNode + 3 DataNodes, replication 2; YARN: one
NodeManager, 4 GB of containers); the HDFS clients are compared (hdfs-native against WebHDFS,
reading the same files); the images are uploaded as plain files and as packs; then each ingest
goes into a fresh embedded index: the local pool on the local files (the baseline), the local
pool reading HDFS, and the MapReduce ingest job on YARN over the plain files and over the packs.
Job times include everything a user waits for (uploads of the job's files, JVM and container
start-ups). Last, the NameNode's object counts and each DataNode's used bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

from accuracy import find_photos
from PIL import Image

import phashdb
from phashdb import hdfs
from phashdb.ingest import find_images, ingest
from phashdb.mr import run as mr

REPO = Path(__file__).resolve().parent.parent
HADOOP = REPO / "tests" / "hadoop"


def variants(job: tuple[str, list[tuple[str, int]]]) -> None:
    """Distinct variants of a photo: the k-th scaled to a long side of 300-1100 px, saved at
    a JPEG quality of 60-95, and mirrored for odd k."""
    source, targets = job
    with Image.open(source) as photo:
        photo = photo.convert("RGB")
    for target, k in targets:
        scale = (300 + (k * 137) % 800) / max(photo.size)
        img = photo.resize(
            (max(8, round(photo.width * scale)), max(8, round(photo.height * scale)))
        )
        if k % 2:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        img.save(target, quality=60 + (k * 7) % 36)


def jmx(cluster: dict, name: str) -> dict:
    url = f"http://{cluster['namenode_http']}/jmx?qry=Hadoop:service=*,name={name}"
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)["beans"][0]


def task_seconds(counters: list, kind: str) -> float:
    """Seconds all `kind` ("map", "reduce") tasks of a job's steps took, from its counters."""
    # Hadoop names the group "Job Counters " (with a space)
    return (
        sum(
            group.get(f"Total time spent by all {kind} tasks (ms)", 0)
            for step in counters
            for name, group in step.items()
            if name.strip() == "Job Counters"
        )
        / 1000
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("folders", nargs="*")
    args = parser.parse_args()
    photos = find_photos(args.folders)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        images = tmp / "images"
        images.mkdir()
        t = time.perf_counter()
        jobs = [
            (
                photo,
                [
                    (str(images / f"{n:06d}.jpg"), n // len(photos))
                    for n in range(i, args.count, len(photos))
                ],
            )
            for i, photo in enumerate(photos)
        ]
        with ProcessPoolExecutor() as pool:
            list(pool.map(variants, jobs))
        size = sum(p.stat().st_size for p in images.iterdir())
        print(
            f"{args.count} variants of {len(photos)} photos, {size / 2**20:.0f} MB, made in "
            f"{time.perf_counter() - t:.0f} s"
        )

        script = HADOOP / "cluster.sh"
        subprocess.run(
            [str(script), "start", str(tmp / "cluster")], check=True, stdout=subprocess.DEVNULL
        )
        try:
            cluster = json.loads((tmp / "cluster" / "cluster.json").read_text())
            run_all(cluster, tmp, images, size)
        finally:
            subprocess.run(
                [str(script), "stop", str(tmp / "cluster")], check=False, stdout=subprocess.DEVNULL
            )


def run_all(cluster: dict, tmp: Path, images: Path, size: int) -> None:
    import hdfs_native

    nn = cluster["namenode"]
    use_cluster(cluster, tmp)
    files = find_images([images])
    client = hdfs_native.Client(nn)
    packs = upload(client, nn, files, size)
    read_rates(client, cluster, files, packs)
    fixed_cost(client, nn, tmp, files)
    ingest_rates(nn, tmp, images, len(files))
    print_namenode(cluster, len(files), len(packs))


def use_cluster(cluster: dict, tmp: Path) -> None:
    """Points mrjob at the cluster (MRJOB_CONF)."""
    conf = tmp / "mrjob.conf"
    conf.write_text(
        json.dumps(
            {
                "runners": {
                    "hadoop": {
                        "hadoop_bin": [
                            str(HADOOP / "bin" / "hadoop"),
                            "--config",
                            cluster["conf_dir"],
                        ],
                        "hadoop_streaming_jar": str(
                            HADOOP / "target" / "lib" / "hadoop-streaming-3.3.4.jar"
                        ),
                        "hadoop_tmp_dir": f"{cluster['namenode']}/tmp/mrjob",
                        "python_bin": sys.executable,
                    }
                }
            }
        )
    )
    os.environ["MRJOB_CONF"] = str(conf)


def upload(client, nn: str, files: list[str], size: int) -> list[str]:
    """The files uploaded to /plain, and packed to /packs: the packs."""
    count = len(files)
    client.mkdirs("/plain", create_parent=True)

    def put(path):
        with client.create(f"/plain/{os.path.basename(path)}") as f:
            f.write(Path(path).read_bytes())

    t = time.perf_counter()
    with ThreadPoolExecutor(16) as threads:  # a file's write waits for its replicas' acks
        list(threads.map(put, files))
    took = time.perf_counter() - t
    t = time.perf_counter()
    packs = hdfs.write_packs(files, f"{nn}/packs", pack_bytes=64 << 20)
    packing = time.perf_counter() - t
    print(
        f"upload to HDFS: plain files {count / took:.0f} files/s (16 threads) "
        f"({size / 2**20 / took:.1f} MB/s); {len(packs)} packs of <= 64 MB "
        f"{count / packing:.0f} images/s ({size / 2**20 / packing:.1f} MB/s)"
    )
    return packs


def read_rates(client, cluster: dict, files: list[str], packs: list[str]) -> None:
    """The clients, reading the same 500 files one after another (what a task does)."""
    sample = [f"/plain/{os.path.basename(p)}" for p in files[:500]]
    t = time.perf_counter()
    for path in sample:
        with client.read(path) as f:
            f.read()
    native = len(sample) / (time.perf_counter() - t)
    t = time.perf_counter()
    for path in sample:
        url = f"http://{cluster['namenode_http']}/webhdfs/v1{path}?op=OPEN"
        with urllib.request.urlopen(url, timeout=30) as response:
            response.read()
    web = len(sample) / (time.perf_counter() - t)
    members = list(hdfs.pack_members(packs[0]))[:500]
    t = time.perf_counter()
    for name in members:
        hdfs.open_image(f"{packs[0]}#{name}")
    packed = len(members) / (time.perf_counter() - t)
    print(
        f"reading small files one by one: hdfs-native {native:.0f} files/s, WebHDFS "
        f"{web:.0f} files/s ({native / web:.1f}x); pack members (ranged reads) "
        f"{packed:.0f} images/s"
    )


def fixed_cost(client, nn: str, tmp: Path, files: list[str]) -> None:
    """A job's fixed cost: a 2-image job, with mrjob's own runner (a `hadoop fs` JVM for each
    of its file operations) and with phashdb's (them through hdfs-native)."""
    client.mkdirs("/two", create_parent=True)
    for path in files[:2]:
        with client.create(f"/two/{os.path.basename(path)}") as f:
            f.write(Path(path).read_bytes())
    fixed = {}
    for name, make in (
        ("mrjob's runner", lambda job, runner: job.make_runner()),
        ("hdfs-native file operations", mr.make_runner),
    ):
        with phashdb.open(tmp / f"two-{len(fixed)}") as index:
            saved, mr.make_runner = mr.make_runner, make
            try:
                t = time.perf_counter()
                assert mr.ingest(index, [f"{nn}/two"], "hadoop").added == 2
                fixed[name] = time.perf_counter() - t
            finally:
                mr.make_runner = saved
    print(
        "a 2-image job on YARN (its fixed cost): "
        + ", ".join(f"{name} {t:.1f} s" for name, t in fixed.items())
    )


def ingest_rates(nn: str, tmp: Path, images: Path, count: int) -> None:
    """The whole ingest, by a local pool and by YARN, of plain files and of packs."""
    rates, counters, elapsed = {}, {}, {}
    runs = [
        ("local pool, local files", [str(images)], None),
        ("local pool, HDFS files", [f"{nn}/plain"], None),
        ("YARN, HDFS files", [f"{nn}/plain"], "hadoop"),
        ("YARN, HDFS packs", [f"{nn}/packs"], "hadoop"),
    ]
    for name, where, runner in runs:
        counters[name] = []
        with phashdb.open(tmp / name.replace(" ", "_").replace(",", "")) as index:
            t = time.perf_counter()
            if runner:
                report = mr.ingest(index, where, runner, counters[name])
            else:
                report = ingest(index, where)
            elapsed[name] = time.perf_counter() - t
            rates[name] = report.added / elapsed[name]
            assert report.added == count, (name, report.to_json()["failed"][:3])
    base = rates["local pool, local files"]
    print(f"ingest of {count} images, {os.cpu_count()} cores:")
    for name, rate in rates.items():
        line = (
            f"  {name:<26} {rate:7.1f} images/s  {elapsed[name]:5.0f} s  "
            f"({rate / base:.2f}x the local pool)"
        )
        if task_seconds(counters[name], "map"):
            busy = task_seconds(counters[name], "map")
            line += f"; {count / busy:.1f} images/s per map container ({busy:.0f} s in maps)"
        print(line)


def print_namenode(cluster: dict, count: int, packs: int) -> None:
    fs = jmx(cluster, "FSNamesystem")
    print(
        f"NameNode: {fs['FilesTotal']} files and {fs['BlocksTotal']} blocks "
        f"({count} plain images, {packs} packs, the jobs' files)"
    )
    nodes = json.loads(jmx(cluster, "NameNodeInfo")["LiveNodes"])
    used = {name: node["usedSpace"] for name, node in sorted(nodes.items())}
    total = sum(used.values())
    print(f"DataNode used bytes (replication {cluster['replication']}):")
    for name, b in used.items():
        print(f"  {name:<26} {b / 2**20:7.1f} MB  ({b / total:.0%})")


if __name__ == "__main__":
    main()

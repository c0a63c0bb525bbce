"""Running the MapReduce jobs for the CLI and the library: the input file, shipping phashdb to
the tasks, reading the output, loading it into the index. The jobs themselves stay small."""

from __future__ import annotations

import base64
import importlib.util
import math
import os
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from mrjob.step import StepFailedException

from ..errors import Error
from ..grouping import Group, best_links, link_from_json
from ..ingest import BATCH, IngestReport, count_duplicates, pending_files
from ..records import Image, image_from_json
from ..store import capabilities

RUNNERS = ("inline", "local", "hadoop", "spark", "emr", "dataproc")
CLUSTER_RUNNERS = ("hadoop", "emr", "dataproc")  # on a Hadoop cluster: the job sets its task counts
# Input lines (image files) per map task on a cluster: enough work to amortise a task's start
# (a container JVM and a Python with numpy and Pillow, a few seconds), and many tasks for a
# large ingest, so that every node's containers get work.
LINES_PER_MAP = 1000
# The dedupe job's input lines per map task: a line (an id and a hash) takes microseconds.
DEDUPE_LINES_PER_MAP = 250_000
# Hashes a reducer of the dedupe job holds (its homes; with group bits, probes come on top).
GROUP_HASHES = 1_000_000
# Reduce tasks of the dedupe job at most.
REDUCES = 64


LOADS = ("hfile", "online")


def ingest(
    index, folders: Iterable[str | os.PathLike], runner: str, counters: list | None = None,
    load: str = "hfile",
) -> IngestReport:  # fmt: skip
    """Hash the images under `folders` not stored yet with the ingest job on `runner`, and
    store them: an HBase index through HFiles from the job's output (`load="hfile"`, see
    phashdb.hbase.bulkload) or by the tasks' own puts (`load="online"`); the embedded index
    by this driver. `counters`: as for run()."""
    from .ingest import MRIngest

    if load not in LOADS:
        raise ValueError(f"'load' must be one of {', '.join(LOADS)}, got {load!r}")
    report = IngestReport()
    todo, report.skipped = pending_files(index, folders)
    # A store with bulk load takes the job's output as HFiles; one other machines reach by its
    # URL may be written by the tasks themselves.
    bulk_loads = getattr(index.store, "bulk_load", None) is not None
    loaded_by_tasks = "remote" in capabilities(index.store) and load == "online"
    args = ["--db", index.store.url] if loaded_by_tasks else []
    if index.max_pixels:
        args += ["--max-pixels", str(index.max_pixels)]
    batch: list[Image] = []
    bulk: list[Image] = []

    def store(batch):
        if bulk_loads and not loaded_by_tasks:
            bulk.extend(batch)  # loaded at the end, all in one bulk load
            return
        if not loaded_by_tasks:
            index.insert(batch)
        report.added += len(batch)
        report.duplicates += count_duplicates(index, batch)

    for record in run(MRIngest, runner, args, todo, counters):
        if "failed" in record:
            report.failed.append((record["failed"], record["error"]))
            continue
        batch.append(image_from_json(record["image"]))
        if len(batch) >= BATCH:
            store(batch)
            batch = []
    if batch:
        store(batch)
    if bulk:
        # new files bulk-loaded; files changed since they were stored replaced online
        index.bulk_load(bulk)
        report.added += len(bulk)
        report.duplicates += count_duplicates(index, bulk)
    report.failed.sort()
    return report


def dedupe(
    index, runner: str, threshold: int | None = None, bands: str = "5",
    group_bits: int | None = None, counters: list | None = None,
) -> list[Group]:
    """`Index.dedupe` as the dedupe job on `runner`: the same groups. `group_bits`: as the
    job's --group-bits (default: the fewest that keep a reducer's group to GROUP_HASHES)."""
    from .dedupe import MRDedupe

    threshold = index.threshold if threshold is None else threshold
    index.dedupe_bound(threshold)
    ids, hashes = index.store.hashes()
    stored = index.descriptors()
    if group_bits is None:
        group_bits = max(0, math.ceil(math.log2(max(len(ids), 1) / GROUP_HASHES)))
    lines = (
        f"{id}\t{h:016x}" + (f"\t{base64.b64encode(stored[id]).decode()}" if id in stored else "")
        for id, h in zip(ids.tolist(), hashes.tolist())
    )
    args = [
        "--threshold", str(threshold), "--reach", str(index.reach), "--variants",
        str(int(index.variants)), "--bands", bands, "--group-bits", str(group_bits),
    ]  # fmt: skip
    if runner in CLUSTER_RUNNERS:
        # A reduce task per key, up to REDUCES (the band count, at group_bits 0).
        keys = len(bands.split(",")) if "," in bands else int(bands)
        args += ["--jobconf", f"mapreduce.job.reduces={min(keys << group_bits, REDUCES)}"]
    links = []
    for record in run(MRDedupe, runner, args, lines, counters, DEDUPE_LINES_PER_MAP):
        if "link" in record:
            links.append(link_from_json(record["link"]))
    return index.groups(best_links(links))


def run(
    job_class, runner: str, args: list[str], lines: Iterable[str], counters: list | None = None,
    lines_per_map: int = LINES_PER_MAP,
) -> Iterator[dict]:
    """Run `job_class` on `runner` over input `lines`; yield its output values. phashdb goes
    to the tasks as a zip on their PYTHONPATH (mrjob's py_files), so the cluster needs only
    phashdb's dependencies, not phashdb. `counters`, if given, receives each step's Hadoop
    counters (mrjob's runner.counters(): group -> name -> value)."""
    if runner not in RUNNERS:
        raise ValueError(f"'runner' must be one of {', '.join(RUNNERS)}, got {runner!r}")
    with tempfile.TemporaryDirectory(prefix="phashdb-mr-") as tmp:
        source = Path(tmp) / "input.txt"
        source.write_text("".join(f"{line}\n" for line in lines))
        argv = ["-r", runner]
        if runner in CLUSTER_RUNNERS:
            count = source.read_text().count("\n")
            maps = max(2, -(-count // lines_per_map))
            argv += ["--jobconf", f"mapreduce.job.maps={maps}"]
        if runner != "inline":
            argv += ["--py-files", package_zip(Path(tmp))]
        job = job_class(argv + args + [str(source)])
        try:
            with make_runner(job, runner) as job_runner:
                job_runner.run()
                if counters is not None:
                    counters.extend(job_runner.counters())
                for _, value in job.parse_output(job_runner.cat_output()):
                    yield value
        except (StepFailedException, OSError) as e:
            raise Error(f"the {job_class.__name__} job failed on the {runner} runner: {e}") from e


def make_runner(job, runner: str):
    """The job's mrjob runner; for "hadoop", one doing its hdfs:// file operations through
    hdfs-native (when installed) instead of a `hadoop fs` JVM each."""
    if runner == "hadoop" and importlib.util.find_spec("hdfs_native"):
        from .hdfs_fs import HadoopRunner

        return HadoopRunner(**job._runner_kwargs())
    return job.make_runner()


def package_zip(folder: Path) -> str:
    """phashdb's own files, zipped for the tasks' PYTHONPATH."""
    package = Path(__file__).resolve().parent.parent
    target = folder / "phashdb.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(package.rglob("*")):
            if path.suffix in (".py", ".thrift"):
                z.write(path, Path("phashdb") / path.relative_to(package))
    return str(target)

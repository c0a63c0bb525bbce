"""Running the MapReduce jobs for the CLI and the library: the input file, shipping phashdb to
the tasks, reading the output, loading it into the index. The jobs themselves stay small."""

from __future__ import annotations

import base64
import importlib.util
import itertools
import math
import os
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from mrjob.step import StepFailedException

from ..errors import Error
from ..grouping import Group, connected_groups
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
# Hashes a reducer key of the dedupe job holds as its homes at most (probes come on top):
# the group bits grow with the index so that no reducer holds more than a bounded share.
KEY_HASHES = 50_000
# Links a reduce task of the components jobs takes (a task's start costs seconds; a link, us).
PAIRS_PER_REDUCE = 200_000
# Hashes a reduce task of the dedupe job takes: a small index needs no reducer per key.
HASHES_PER_REDUCE = 10_000
# Rounds of the connected components at most: large-star/small-star takes O(log^2 n) rounds
# at worst, about log n in practice (Kiveris et al.).
MAX_ROUNDS = 40
# Reduce tasks of the dedupe jobs at most: each reports its largest input as a counter of its
# own, and Hadoop fails a job past 120 counters (mapreduce.job.counters.max; ~60 its own).
REDUCES = 32


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
    if not todo:  # nothing new: no job (on a cluster, an application of its own)
        return report
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
    index,
    runner: str,
    threshold: int | None = None,
    bands: str = "5",
    group_bits: int | None = None,
    counters: list | None = None,
) -> list[Group]:
    """`Index.dedupe` as MapReduce jobs on `runner`: the same groups, and no step on one node
    (the close pairs by band keys, phashdb.mr.dedupe; the groups by connected components,
    phashdb.mr.stars and phashdb.mr.groups). `group_bits`: as the dedupe job's --group-bits
    (default `group_bits_for` the stored images). `counters`: as for run(), every step's."""
    from .counting import CHANGES
    from .dedupe import MRDedupe
    from .groups import MRGroups
    from .stars import MRStars

    threshold = index.threshold if threshold is None else threshold
    index.dedupe_bound(threshold)
    ids, hashes = index.store.hashes()
    stored = index.descriptors()
    if group_bits is None:
        group_bits = group_bits_for(len(ids))
    decided = {(min(a, b), max(a, b)) for a, b, _ in index.store.decisions(None)}
    lines = itertools.chain(
        (
            f"{id}\t{h:016x}"
            + (f"\t{base64.b64encode(stored[id]).decode()}" if id in stored else "")
            for id, h in zip(ids.tolist(), hashes.tolist())
        ),
        (f"\t{a}\t{b}" for a, b in sorted(decided)),
    )
    args = [
        "--threshold", str(threshold), "--reach", str(index.reach), "--variants",
        str(int(index.variants)), "--bands", bands, "--group-bits", str(group_bits),
    ]  # fmt: skip
    args += dedupe_reduces(runner, bands, group_bits, len(ids))
    counters = [] if counters is None else counters
    with Jobs(runner) as jobs:
        pairs = jobs.run(MRDedupe, args, [jobs.write(lines)], counters, DEDUPE_LINES_PER_MAP)
        links = sum(step.get(CHANGES, {}).get("links", 0) for step in counters)
        if not links:
            return []
        edges, more = pairs, reduces(runner, links)
        for _ in range(MAX_ROUNDS):
            done = len(counters)
            edges = jobs.run(MRStars, more, [edges], counters)
            if not any(step.get(CHANGES, {}).get("changes") for step in counters[done:]):
                break
        else:
            raise Error(f"the connected components did not converge in {MAX_ROUNDS} rounds")
        found = list(jobs.values(MRGroups, more, [pairs, edges], counters))
    return job_groups(found, index.store.find)


def group_bits_for(count: int) -> int:
    """The dedupe job's group bits for `count` stored images: the fewest that keep a key's
    homes to KEY_HASHES (each bit halves them; a reducer then gets about (1 + G) / 2^G of
    the hashes with the default five bands at threshold 8: 19% at G = 5)."""
    return max(0, math.ceil(math.log2(max(count, 1) / KEY_HASHES)))


def dedupe_reduces(runner: str, bands: str, group_bits: int, count: int) -> list[str]:
    """The dedupe job's reduce tasks for `count` hashes: one per key, REDUCES at most, and
    one per HASHES_PER_REDUCE hashes at most (a task's start costs seconds)."""
    if runner not in CLUSTER_RUNNERS:
        return []
    keys = len(bands.split(",")) if "," in bands else int(bands)
    tasks = min(keys << group_bits, REDUCES, -(-count // HASHES_PER_REDUCE))
    return ["--jobconf", f"mapreduce.job.reduces={max(1, tasks)}"]


def reduces(runner: str, links: int) -> list[str]:
    """The components jobs' reduce tasks: one per PAIRS_PER_REDUCE links, REDUCES at most."""
    if runner not in CLUSTER_RUNNERS:
        return []
    return ["--jobconf", f"mapreduce.job.reduces={min(REDUCES, -(-links // PAIRS_PER_REDUCE))}"]


def job_groups(found: Iterable[dict], find) -> list[Group]:
    """The groups the MRGroups job gave, with their stored records (`find`, a store's); an
    image removed since is left out, and what it joined is joined without it."""
    found = list(found)
    records = find({i for group in found for i in group["group"]})
    out = []
    for group in found:
        pairs = [tuple(p) for p in group["pairs"] if p[0] in records and p[1] in records]
        for ids in connected_groups((a, b) for a, b, _ in pairs):
            inside = set(ids)
            mine = tuple(sorted(p for p in pairs if p[0] in inside))
            out.append(Group(tuple(records[i] for i in ids), mine))
    out.sort(key=lambda g: (-len(g.images), g.images[0].id))
    return out


def run(
    job_class,
    runner: str,
    args: list[str],
    lines: Iterable[str],
    counters: list | None = None,
    lines_per_map: int = LINES_PER_MAP,
) -> Iterator[dict]:
    """Run `job_class` on `runner` over input `lines`; yield its output values. phashdb goes
    to the tasks as a zip on their PYTHONPATH (mrjob's py_files), so the cluster needs only
    phashdb's dependencies, not phashdb. `counters`, if given, receives each step's Hadoop
    counters (mrjob's runner.counters(): group -> name -> value)."""
    with Jobs(runner) as jobs:
        counters = [] if counters is None else counters
        yield from jobs.values(job_class, args, [jobs.write(lines)], counters, lines_per_map)


class Jobs:
    """Jobs run one after another on one runner, each reading files written here or earlier
    jobs' outputs (in HDFS on a cluster: the data does not pass through this process); every
    output is removed at the end."""

    def __init__(self, runner: str):
        if runner not in RUNNERS:
            raise ValueError(f"'runner' must be one of {', '.join(RUNNERS)}, got {runner!r}")
        self.runner = runner
        self.outputs: list[tuple] = []

    def __enter__(self) -> Jobs:
        self.tmp = tempfile.TemporaryDirectory(prefix="phashdb-mr-")
        return self

    def __exit__(self, *exc) -> None:
        try:
            for fs, output in self.outputs:
                fs.rm(output.rstrip("/").rsplit("/", 1)[0])  # the job's own temp dir
        finally:
            self.tmp.cleanup()

    def write(self, lines: Iterable[str]) -> str:
        source = Path(self.tmp.name) / f"input-{len(self.outputs)}.txt"
        source.write_text("".join(f"{line}\n" for line in lines))
        return str(source)

    def run(
        self, job_class, args: list[str], inputs: list[str], counters: list,
        lines_per_map: int = LINES_PER_MAP,
    ) -> str:  # fmt: skip
        """Run `job_class` over `inputs` (files or earlier outputs); its output dir."""
        with self._ran(job_class, args, inputs, counters, lines_per_map) as (_, job_runner):
            return job_runner.get_output_dir()

    def values(
        self, job_class, args: list[str], inputs: list[str], counters: list,
        lines_per_map: int = LINES_PER_MAP,
    ) -> Iterator[dict]:  # fmt: skip
        """Run `job_class` over `inputs`; yield its output values."""
        with self._ran(job_class, args, inputs, counters, lines_per_map) as (job, job_runner):
            for _, value in job.parse_output(job_runner.cat_output()):
                yield value

    @contextmanager
    def _ran(self, job_class, args, inputs, counters, lines_per_map):
        runner = self.runner
        # The outputs stay until this object's end (they are the next jobs' inputs).
        argv = ["-r", runner, "--cleanup", "LOCAL_TMP" if runner in CLUSTER_RUNNERS else "NONE"]
        if runner in CLUSTER_RUNNERS:
            lines = sum(Path(p).read_text().count("\n") for p in inputs if Path(p).is_file())
            maps = max(2, -(-lines // lines_per_map))
            argv += ["--jobconf", f"mapreduce.job.maps={maps}"]
        if runner != "inline":
            argv += ["--py-files", package_zip(Path(self.tmp.name))]
        job = job_class(argv + args + inputs)
        try:
            with make_runner(job, runner) as job_runner:
                job_runner.run()
                counters.extend(job_runner.counters())
                self.outputs.append((job_runner.fs, job_runner.get_output_dir()))
                yield job, job_runner
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

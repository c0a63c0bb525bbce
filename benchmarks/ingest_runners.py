"""Images hashed per second by the three ways to ingest, on the same folder of real photos.

    python benchmarks/ingest_runners.py [PHOTO_FOLDER ...]

The photos are scikit-image's bundled ones, or those under PHOTO_FOLDER (e.g. the ~230 of
../shared/photos/build.sh). In one run, each into a fresh embedded index: `ingest` on all
cores (this machine's pool), the MapReduce ingest job on mrjob's `local` runner, and on the
`hadoop` runner driving the real Hadoop of tests/hadoop (local job runner, streaming). Job
times include their start-up (JVMs, subprocesses): that is what a user waits for.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from accuracy import find_photos

import phashdb
from phashdb.ingest import ingest
from phashdb.mr import run as mr

HADOOP = Path(__file__).resolve().parent.parent / "tests" / "hadoop"


def main() -> None:
    photos = find_photos(sys.argv[1:])
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        home = Path(
            subprocess.run([str(HADOOP / "setup.sh")], capture_output=True, text=True, check=True)
            .stdout.strip()
            .splitlines()[-1]
        )
        conf = tmp / "mrjob.conf"
        conf.write_text(
            json.dumps(
                {
                    "runners": {
                        "hadoop": {
                            "hadoop_bin": str(home / "bin" / "hadoop"),
                            "hadoop_streaming_jar": str(
                                home / "target" / "lib" / "hadoop-streaming-3.3.4.jar"
                            ),
                            "hadoop_tmp_dir": (tmp / "hadoop-tmp").as_uri(),
                            "python_bin": sys.executable,
                        }
                    }
                }
            )
        )
        os.environ["MRJOB_CONF"] = str(conf)
        folder = tmp / "photos"
        folder.mkdir()
        for n, photo in enumerate(photos):
            os.symlink(os.path.abspath(photo), folder / f"{n:04d}{Path(photo).suffix}")
        rates = {}
        for name, run in [
            ("ingest, 2 cores", lambda ix: ingest(ix, [folder])),
            ("mrjob local", lambda ix: mr.ingest(ix, [folder], "local")),
            ("mrjob hadoop", lambda ix: mr.ingest(ix, [folder], "hadoop")),
        ]:
            with phashdb.open(tmp / name.replace(" ", "-").replace(",", "")) as index:
                t = time.perf_counter()
                report = run(index)
                rates[name] = report.added / (time.perf_counter() - t)
        print(f"{len(photos)} real photos, {report.added} hashed, {len(report.failed)} failed:")
        base = rates["ingest, 2 cores"]
        for name, rate in rates.items():
            print(f"  {name:<16} {rate:7.1f} images/s  ({rate / base:.2f}x the local pool)")


if __name__ == "__main__":
    main()

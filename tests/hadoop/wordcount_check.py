"""Smoke job for the test Hadoop: a word count through real Hadoop Streaming (LocalJobRunner).

    HADOOP_HOME=$(tests/hadoop/setup.sh) .venv/bin/python tests/hadoop/wordcount_check.py \
        -r hadoop --hadoop-tmp-dir file:///tmp/wc-hadoop-tmp --python-bin .venv/bin/python \
        FILE...

Each task also reports (as counters) which python ran it and whether it could import phashdb's
dependencies, and, when given `--py-files X.zip` / `--setup 'export PYTHONPATH=...'` carrying a
module named `wc_helper`, whether that import worked, so one run shows what the tasks see.
"""

import re
import sys

from mrjob.job import MRJob

WORD = re.compile(r"[\w']+")


def _normalise(word):
    try:
        import wc_helper  # shipped with --py-files or --setup, when given
    except ImportError:
        return word.lower()
    return wc_helper.normalise(word)


class WordCount(MRJob):
    def mapper_init(self):
        self.increment_counter("task python", sys.executable)
        try:
            import numpy  # noqa: F401  (one of phashdb's dependencies: only in the venv)

            self.increment_counter("task imports", "numpy ok")
        except ImportError:
            self.increment_counter("task imports", "numpy MISSING")
        try:
            import wc_helper  # noqa: F401

            self.increment_counter("task imports", "wc_helper ok")
        except ImportError:
            self.increment_counter("task imports", "wc_helper missing")

    def mapper(self, _, line):
        for word in WORD.findall(line):
            yield _normalise(word), 1

    def combiner(self, word, counts):
        yield word, sum(counts)

    def reducer(self, word, counts):
        yield word, sum(counts)


if __name__ == "__main__":
    WordCount.run()

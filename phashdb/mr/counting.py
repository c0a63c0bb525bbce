"""The MapReduce jobs' own counters: how much each reduce task's largest input held (the
values of one key: what a reducer keeps in memory), and the components' progress."""

from __future__ import annotations

from mrjob.compat import jobconf_from_env
from mrjob.job import MRJob

LARGEST = "phashdb largest reducer input"
CHANGES = "phashdb components"


class CountsInput(MRJob):
    """A job whose reducers report their largest input: counter LARGEST / "STEP task N"."""

    def counted(self, step: str, values) -> list:
        """`values` as a list; raises this reduce task's counter for `step` to their count
        when it is the largest seen (a counter sums its increments: the sum is the max)."""
        values = list(values)
        largest = getattr(self, "_largest", {})
        self._largest = largest
        if len(values) > largest.get(step, 0):
            task = jobconf_from_env("mapreduce.task.partition", "0")
            self.increment_counter(
                LARGEST, f"{step} task {task}", len(values) - largest.get(step, 0)
            )
            largest[step] = len(values)
        return values


def largest_inputs(counters: list[dict]) -> list[int]:
    """Each step's largest reducer input, from the counters mrjob gives (one dict a step)."""
    return [max(step.get(LARGEST, {}).values(), default=0) for step in counters]

"""Connected components of the dedupe job's links, in MapReduce steps: no step gathers every
pair on one node.

MRStars is one round of the alternating large-star and small-star steps of Kiveris et al.,
"Connected Components in MapReduce and Beyond" (SoCC 2014) over the links' undirected edges
(node ids, compared as strings: a component's label is its smallest id). Large-star: a node
links each larger neighbour to the smallest of itself and its neighbours; small-star: a node
links itself and each smaller neighbour to the smallest of them. A round that changes no edge
(its counter `changes` 0 in both steps) leaves every component a star around its smallest id;
the driver (phashdb.mr.run.dedupe) runs rounds, a job each, until one does.

MRGroups turns the stars into groups as phashdb.grouping.groups makes them: each link and each
"not duplicates" decision goes to its first image's label; a component holding a decided pair
is split there, strongest links first (grouping's `_apart`), so the groups are Index.dedupe's.
A reducer holds one component's links: the largest group bounds it, not the index.

Each reduce task reports its largest input (the values of one key) as the counter
"phashdb largest reducer input" / "STEP task N" (see `largest_inputs`).
"""

from __future__ import annotations

from mrjob.compat import jobconf_from_env
from mrjob.job import MRJob
from mrjob.protocol import JSONProtocol, JSONValueProtocol
from mrjob.step import MRStep

LARGEST = "phashdb largest reducer input"
CHANGES = "phashdb components"


class CountsInput(MRJob):
    """A job whose reducers report their largest input (see `counted`)."""

    def counted(self, step: str, values) -> list:
        """`values` as a list; raises this reduce task's counter for `step` to their count
        when it is the largest seen (a counter sums its increments: the sum is the max)."""
        values = list(values)
        largest = getattr(self, "_largest", {})
        self._largest = largest
        if len(values) > largest.get(step, 0):
            task = jobconf_from_env("mapreduce.task.partition", "0")
            self.increment_counter(LARGEST, f"{step} task {task}", len(values) - largest.get(step, 0))
            largest[step] = len(values)
        return values


def largest_inputs(counters: list[dict]) -> list[int]:
    """Each step's largest reducer input, from the counters mrjob gives (one dict a step)."""
    return [max(step.get(LARGEST, {}).values(), default=0) for step in counters]


class MRStars(CountsInput):
    """One round of large-star then small-star. Input and output: JSON [u, v] edges."""

    INPUT_PROTOCOL = JSONValueProtocol
    INTERNAL_PROTOCOL = JSONProtocol
    OUTPUT_PROTOCOL = JSONValueProtocol

    def steps(self):
        return [
            MRStep(mapper=self.both_ways, reducer=self.large_star),
            MRStep(mapper=self.to_larger, reducer=self.small_star),
        ]

    def both_ways(self, _, edge):
        if isinstance(edge, dict):  # the dedupe job's output: its links are the first edges
            if "link" not in edge:
                return
            edge = edge["link"][:2]
        u, v = edge
        yield u, v
        yield v, u

    def large_star(self, u, neighbours):
        neighbours = set(self.counted("large-star", neighbours))
        m = min(min(neighbours), u)
        larger = [v for v in neighbours if v > u]
        if m < u and larger:
            self.increment_counter(CHANGES, "changes", len(larger))
        for v in larger:
            yield None, [v, m]

    def to_larger(self, _, edge):
        u, v = edge
        yield (u, v) if v < u else (v, u)

    def small_star(self, u, smaller):
        smaller = set(self.counted("small-star", smaller))
        m = min(smaller)
        if len(smaller) > 1:
            self.increment_counter(CHANGES, "changes", len(smaller) - 1)
        for v in smaller | {u}:
            if v != m:
                yield None, [v, m]


class MRGroups(CountsInput):
    """The groups. Input: the dedupe job's output ({"link": [a, b, distance, score, variant]},
    {"decided": [a, b]}) and the converged stars ([v, label]). Output: {"group": [ids],
    "pairs": [[a, b, distance], ...]}, one a group."""

    INPUT_PROTOCOL = JSONValueProtocol
    INTERNAL_PROTOCOL = JSONProtocol
    OUTPUT_PROTOCOL = JSONValueProtocol

    def steps(self):
        return [
            MRStep(mapper=self.by_first_image, reducer=self.to_label),
            MRStep(reducer=self.groups),
        ]

    def by_first_image(self, _, record):
        if isinstance(record, list):  # a star's edge: image, label
            yield record[0], ["label", record[1]]
        elif "link" in record:
            yield record["link"][0], ["link", record["link"]]
        else:
            yield record["decided"][0], ["decided", record["decided"]]

    def to_label(self, image, values):
        values = self.counted("to-label", values)
        label = next((v for kind, v in values if kind == "label"), image)
        for kind, value in values:
            if kind != "label":
                yield label, [kind, value]

    def groups(self, _, values):
        from phashdb.grouping import apart, connected_groups, link_from_json

        values = self.counted("groups", values)
        links = [link_from_json(v) for kind, v in values if kind == "link"]
        if not links:  # decisions about images of no group
            return
        members = {i for link in links for i in (link.a, link.b)}
        decided = {tuple(v) for kind, v in values if kind == "decided"}
        decided = {(a, b) for a, b in decided if a in members and b in members}
        if decided:
            links = apart(links, decided)
        for ids in connected_groups((link.a, link.b) for link in links):
            inside = set(ids)
            pairs = sorted((k.a, k.b, k.distance) for k in links if k.a in inside)
            yield None, {"group": ids, "pairs": pairs}

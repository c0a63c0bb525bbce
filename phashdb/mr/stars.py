"""Connected components of the dedupe job's links, in MapReduce steps: no step gathers every
pair on one node.

MRStars is one round of the alternating large-star and small-star steps of Kiveris et al.,
"Connected Components in MapReduce and Beyond" (SoCC 2014) over the links' undirected edges
(node ids, compared as strings: a component's label is its smallest id). Large-star: a node
links each larger neighbour to the smallest of itself and its neighbours; small-star: a node
links itself and each smaller neighbour to the smallest of them. A round that changes no edge
(its counter `changes` 0 in both steps) leaves every component a star around its smallest id;
the driver (phashdb.mr.run.dedupe) runs rounds, a job each, until one does.
"""

from __future__ import annotations

from mrjob.protocol import JSONProtocol, JSONValueProtocol
from mrjob.step import MRStep

from phashdb.mr.counting import CHANGES, CountsInput  # not relative: Hadoop runs this file


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


if __name__ == "__main__":
    MRStars.run()

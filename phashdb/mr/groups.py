"""The dedupe job's groups from the converged stars of phashdb.mr.stars, as
phashdb.grouping.groups makes them: each link and each "not duplicates" decision goes to its
first image's label (its component's smallest id); a component holding a decided pair is split
there, strongest links first (grouping's `apart`), so the groups are Index.dedupe's. A reducer
holds one component's links: the largest group bounds it, not the index.
"""

from __future__ import annotations

from mrjob.protocol import JSONProtocol, JSONValueProtocol
from mrjob.step import MRStep

from phashdb.mr.counting import CountsInput  # not relative: Hadoop runs this file


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


if __name__ == "__main__":
    MRGroups.run()

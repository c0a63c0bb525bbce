"""MapReduce dedupe: every pair of stored hashes within the threshold, then connected groups.

Each hash is emitted under its own value of every band ("home"), and, for the bands the
pigeonhole rule probes at radius s > 0, also under every value within s bits ("probe"). Two
hashes within the threshold share a home key, or one's probe key is the other's home key, in at
least one band; the reducer of that key compares them. Input lines: `id<TAB>16-hex-digit hash`.
Output (JSON lines): {"pair": [id, id], "distance": d} for each close pair, then
{"group": [ids]} for each group of near-duplicates, largest first.
"""

from __future__ import annotations

from mrjob.job import MRJob
from mrjob.protocol import JSONProtocol, JSONValueProtocol, RawValueProtocol
from mrjob.step import MRStep


class MRDedupe(MRJob):
    INPUT_PROTOCOL = RawValueProtocol
    INTERNAL_PROTOCOL = JSONProtocol
    OUTPUT_PROTOCOL = JSONValueProtocol

    def configure_args(self):
        super().configure_args()
        self.add_passthru_arg("--threshold", type=int, default=8, help="largest distance")
        self.add_passthru_arg("--bands", default="5", help="band count, or widths W,W,...")

    def steps(self):
        return [
            MRStep(mapper_init=self.load_layout, mapper=self.band_keys, reducer=self.close_pairs),
            MRStep(reducer=self.one_of_each),
            MRStep(mapper=self.all_to_one, reducer=self.groups),
        ]

    def load_layout(self):
        from phashdb.bands import BandLayout

        widths = [int(w) for w in self.options.bands.split(",")]
        self.layout = BandLayout(tuple(widths)) if len(widths) > 1 else BandLayout.even(widths[0])

    def band_keys(self, _, line):
        import numpy as np

        from phashdb.bands import flip_masks

        id, hex_hash = line.rstrip("\n").split("\t")
        values = self.layout.split(np.array([int(hex_hash, 16)], dtype=np.uint64))
        radii = self.layout.probe_radii(self.options.threshold)
        for band, (width, r, v) in enumerate(zip(self.layout.widths, radii, values)):
            if r < 0:
                continue
            value = int(v[0])
            yield [band, value], ["home", id, hex_hash]
            for mask in flip_masks(width, r)[1:].tolist():
                yield [band, value ^ mask], ["probe", id, hex_hash]

    def close_pairs(self, _, entries):
        homes, probes = [], []
        for kind, id, hex_hash in entries:
            (homes if kind == "home" else probes).append((id, int(hex_hash, 16)))
        pairs = [(a, b) for i, a in enumerate(homes) for b in homes[i + 1 :]]
        pairs += [(p, h) for p in probes for h in homes]
        for (a, ha), (b, hb) in pairs:
            d = (ha ^ hb).bit_count()
            if a != b and d <= self.options.threshold:
                yield sorted([a, b]), d

    def one_of_each(self, pair, distances):
        yield pair, next(iter(distances))

    def all_to_one(self, pair, distance):
        yield None, [pair, distance]

    def groups(self, _, pairs):
        from phashdb.index import connected_groups

        pairs = sorted(pairs)
        for (a, b), d in pairs:
            yield None, {"pair": [a, b], "distance": d}
        for group in connected_groups(pair for pair, _ in pairs):
            yield None, {"group": group}

if __name__ == "__main__":
    MRDedupe.run()

"""MapReduce dedupe: every pair of stored hashes within the threshold, then connected groups.

The pigeonhole rule: two hashes within the threshold have, in at least one band, values
within that band's probe radius r. Each hash goes, for every band with r >= 0, to the reducer
key of its band value's top G bits (`--group-bits`; its "home"), and as a "probe" to the keys
whose top G bits are within r of them. So two close hashes meet at one key of their first
close band: one's home, where the other is home or probe. That reducer searches its group
exactly (phashdb's band tables over its homes, every hash it got as a query) and emits a
pair only there: at its first close band, from the home of the smaller id. G = 0 makes one key
per band holding every hash (a job of few, large map outputs, for what fits a reducer's
memory); each bit more halves a group and adds r probe records per hash and band.
Input lines: `id<TAB>16-hex-digit hash`. Output (JSON lines): {"pair": [id, id], "distance": d}
for each close pair, then {"group": [ids]} for each group of near-duplicates, largest first.
"""

from __future__ import annotations

from mrjob.job import MRJob
from mrjob.protocol import JSONProtocol, JSONValueProtocol, RawValueProtocol
from mrjob.step import MRStep

# A reducer holds its group (ids, hashes, band tables) in memory: containers of this size.
REDUCE_MEMORY_MB = 1536


class MRDedupe(MRJob):
    INPUT_PROTOCOL = RawValueProtocol
    INTERNAL_PROTOCOL = JSONProtocol
    OUTPUT_PROTOCOL = JSONValueProtocol

    def configure_args(self):
        super().configure_args()
        self.add_passthru_arg("--threshold", type=int, default=8, help="largest distance")
        self.add_passthru_arg("--bands", default="5", help="band count, or widths W,W,...")
        self.add_passthru_arg("--group-bits", type=int, default=0, help="band bits per key")

    def steps(self):
        memory = {"mapreduce.reduce.memory.mb": str(REDUCE_MEMORY_MB)}
        return [
            MRStep(
                mapper_init=self.load_layout, mapper=self.band_keys,
                reducer_init=self.load_layout, reducer=self.close_pairs, jobconf=memory,
            ),
            MRStep(mapper=self.all_to_one, reducer=self.groups),
        ]

    def load_layout(self):
        from phashdb.bands import BandLayout

        widths = [int(w) for w in self.options.bands.split(",")]
        self.layout = BandLayout(tuple(widths)) if len(widths) > 1 else BandLayout.even(widths[0])
        self.radii = self.layout.probe_radii(self.options.threshold)

    def band_keys(self, _, line):
        from phashdb.bands import flip_masks

        id, hex_hash = line.rstrip("\n").split("\t")
        h = int(hex_hash, 16)
        for band, (width, r, shift) in enumerate(
            zip(self.layout.widths, self.radii, self.layout.shifts)
        ):
            if r < 0:
                continue
            bits = min(self.options.group_bits, width)
            group = (h >> (shift + width - bits)) & ((1 << bits) - 1)
            # Strings, not lists: JSON encodes a string in one C call (lists cost 3x, most of
            # the map's time).
            yield f"{band} {group}", f"1 {hex_hash} {id}"
            for mask in flip_masks(bits, r)[1:].tolist():
                yield f"{band} {group ^ mask}", f"0 {hex_hash} {id}"

    def close_pairs(self, key, entries):
        import numpy as np

        from phashdb.bands import BandLayout, distances
        from phashdb.tables import BandTables

        home_ids, home_hashes, query_ids, query_hashes = [], [], [], []
        for entry in entries:
            home, hex_hash, id = entry.split(" ", 2)
            query_ids.append(id)
            query_hashes.append(int(hex_hash, 16))
            if home == "1":
                home_ids.append(id)
                home_hashes.append(query_hashes[-1])
        if not home_ids:
            return
        homes = np.array(home_hashes, dtype=np.uint64)
        queries = np.array(query_hashes, dtype=np.uint64)
        tables = BandTables.build(
            np.arange(len(homes)), homes, BandLayout.for_size(len(homes)),
            np.zeros(0, dtype=np.uint8), np.zeros(len(homes), dtype=np.int64),
        )
        q, rows, d = tables.search(queries, self.options.threshold)
        home_ids, query_ids = np.array(home_ids), np.array(query_ids)
        # Once: from the home of the smaller id (which also drops each hash's match with
        # itself), and at the pair's first band within the probe radius.
        keep = home_ids[rows] < query_ids[q]
        q, rows, d = q[keep], rows[keep], d[keep]
        a, b = self.layout.split(queries[q]), self.layout.split(homes[rows])
        close = distances(a.astype(np.uint64), b.astype(np.uint64)) <= np.array(self.radii)[:, None]
        first = np.argmax(close, axis=0)
        for i in np.flatnonzero(first == int(key.split(" ")[0])).tolist():
            yield [str(home_ids[rows[i]]), str(query_ids[q[i]])], int(d[i])

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

"""MapReduce dedupe: every pair of stored images a check would call duplicates, then groups.

The searches are those of phashdb.grouping (as-is up to the reach for an image with a
descriptor, else the threshold; each stored flip, rotation and key at the threshold), judged there
too, so the links are Index.dedupe's. The pigeonhole rule: a query and a stored hash within the
query's radius R have, in at least one band, values within that band's probe radius for R.
Each image goes, for every band, to the reducer key of its band value's top G bits
(`--group-bits`; its "home"), and each of its queries as a "probe" to the keys whose top G bits
are within the probe radius of them. So a query and a close stored hash meet at one key of
their first close band: the hash's home. That reducer searches its group exactly (phashdb's
band tables over its homes, every query it got) and judges a hit only there. G = 0 makes one
key per band holding every hash; each bit more halves a group and adds probe records.
Input lines: `id<TAB>16-hex-digit hash[<TAB>stored descriptor in base64]`, and
`<TAB>a<TAB>b` for each pair the user marked not duplicates. Output (JSON lines), one record a
pair, from the pair's own reducer: {"link": [a, b, distance, score, variant]} for each linked
pair (its strongest way), {"decided": [a, b]} for each decided pair (its link left out). The
groups are made from them in MapReduce steps too (phashdb.mr.stars, phashdb.mr.groups).
"""

from __future__ import annotations

from mrjob.protocol import JSONProtocol, JSONValueProtocol, RawValueProtocol
from mrjob.step import MRStep

from phashdb.mr.counting import CHANGES, CountsInput  # not relative: Hadoop runs this file

# A reducer holds its group (ids, hashes, band tables) in memory: containers of this size.
REDUCE_MEMORY_MB = 1536


class MRDedupe(CountsInput):
    INPUT_PROTOCOL = RawValueProtocol
    INTERNAL_PROTOCOL = JSONProtocol
    OUTPUT_PROTOCOL = JSONValueProtocol

    def configure_args(self):
        super().configure_args()
        self.add_passthru_arg("--threshold", type=int, default=8, help="largest distance")
        self.add_passthru_arg("--reach", type=int, default=0, help="the second stage's reach")
        self.add_passthru_arg("--variants", type=int, default=1, help="1: search flips")
        self.add_passthru_arg("--bands", default="5", help="band count, or widths W,W,...")
        self.add_passthru_arg("--group-bits", type=int, default=0, help="band bits per key")

    def steps(self):
        memory = {"mapreduce.reduce.memory.mb": str(REDUCE_MEMORY_MB)}
        return [
            MRStep(
                mapper_init=self.load_layout,
                mapper=self.band_keys,
                reducer_init=self.load_layout,
                reducer=self.close_pairs,
                jobconf=memory,
            ),
            MRStep(reducer=self.best_link),
        ]

    def load_layout(self):
        from phashdb.bands import BandLayout

        widths = [int(w) for w in self.options.bands.split(",")]
        self.layout = BandLayout(tuple(widths)) if len(widths) > 1 else BandLayout.even(widths[0])
        self.radii = {}  # a query radius -> each band's probe radius

    def probe_radii(self, radius: int) -> tuple[int, ...]:
        if radius not in self.radii:
            self.radii[radius] = self.layout.probe_radii(radius)
        return self.radii[radius]

    def band_keys(self, _, line):
        import base64

        from phashdb.bands import flip_masks
        from phashdb.confirm import BETWEEN
        from phashdb.descriptor import core
        from phashdb.grouping import NAMES, queries

        id, hex_hash, *rest = line.rstrip("\n").split("\t")
        if not id:  # a decided pair: to its own reducer in the next step
            yield f"decided {hex_hash}", f"d\t{hex_hash}\t{rest[0]}"
            return
        stored = base64.b64decode(rest[0]) if rest and rest[0] else None
        o = self.options
        found = queries(id, int(hex_hash, 16), stored, o.threshold, o.reach, bool(o.variants))
        for n, query in enumerate(found):
            # Strings, not lists: JSON encodes a string in one C call (lists cost 3x, most of
            # the map's time).
            mine = query.descriptor
            if query.variant in BETWEEN and mine is not None:  # its source's bound goes with it
                mine += core(stored) or b""
            mine = "-" if mine is None else base64.b64encode(mine).decode()
            entry = f"{NAMES.index(query.variant)} {query.hash:016x} {mine} {id}"
            for band, (width, r, shift) in enumerate(
                zip(self.layout.widths, self.probe_radii(query.radius), self.layout.shifts)
            ):
                bits = min(o.group_bits, width)
                group = (query.hash >> (shift + width - bits)) & ((1 << bits) - 1)
                masks = flip_masks(bits, r).tolist() if r >= 0 else []
                if n == 0:  # the image's home (its as-is hash, stored there), in every band:
                    # another image's query may reach further than its own
                    yield f"{band} {group}", f"h {entry}"
                    masks = masks[1:]
                for mask in masks:
                    yield f"{band} {group ^ mask}", f"q {entry}"

    def close_pairs(self, key, entries):
        import base64

        import numpy as np

        from phashdb.bands import distances
        from phashdb.descriptor import SIZE
        from phashdb.grouping import NAMES, Query, band_tables, judge_hits, radius_of

        if key.startswith("decided "):
            for entry in entries:
                yield entry.split("\t")[1:], "decided"
            return
        o = self.options
        homes, stored, found = [], {}, []
        for entry in self.counted("close-pairs", entries):
            kind, n, hex_hash, mine, id = entry.split(" ", 4)
            h, n = int(hex_hash, 16), int(n)
            mine = None if mine == "-" else base64.b64decode(mine)
            if mine is not None and len(mine) == 2 * SIZE:  # a key and its source (BETWEEN)
                mine, stored[id] = mine[:SIZE], mine[SIZE:]
            if kind == "h":
                homes.append((id, h))
                if mine is not None:
                    stored[id] = mine
            radius = radius_of(NAMES[n], mine is not None, o.threshold, o.reach)
            found.append(Query(id, NAMES[n], h, mine, radius))
        if not homes:
            return
        home_ids = [id for id, _ in homes]
        home_hashes = np.array([h for _, h in homes], dtype=np.uint64)
        queries = np.array([query.hash for query in found], dtype=np.uint64)
        q, rows, d = band_tables(home_hashes).search(queries, max(query.radius for query in found))
        # Judged once: at the pair's first band within the query's probe radius.
        a, b = self.layout.split(queries[q]), self.layout.split(home_hashes[rows])
        radii = np.array([self.probe_radii(found[k].radius) for k in q.tolist()], dtype=np.int64)
        close = distances(a.astype(np.uint64), b.astype(np.uint64)) <= radii.T.reshape(a.shape)
        first = np.argmax(close, axis=0) == int(key.split(" ")[0])
        q, rows, d = q[first], rows[first], d[first]
        ids = [home_ids[r] for r in rows.tolist()]
        for link in judge_hits(found, q.tolist(), ids, d.tolist(), stored, o.threshold):
            yield [link.a, link.b], link.to_json()

    def best_link(self, pair, links):
        from phashdb.grouping import best_links, link_from_json

        links = self.counted("best-link", links)
        if "decided" in links:
            yield None, {"decided": pair}
            return
        (best,) = best_links(link_from_json(link) for link in links).values()
        self.increment_counter(CHANGES, "links")
        yield None, {"link": best.to_json()}


if __name__ == "__main__":
    MRDedupe.run()

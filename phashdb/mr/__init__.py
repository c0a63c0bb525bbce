"""Bulk work as mrjob MapReduce jobs: `ingest` hashes and loads images, `dedupe` finds every
group of near-duplicates. Run them with `phashdb ingest/dedupe --runner ...`, or as
`python -m phashdb.mr.ingest` / `python -m phashdb.mr.dedupe` with mrjob's own options."""

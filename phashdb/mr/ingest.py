"""MapReduce ingest: each input line is an image path (or a folder of images); mappers hash
them and report bad files as records, never failing the job. With `--db hbase://...` the tasks
load the hashes into HBase themselves, in batches; otherwise the driver loads the output."""

from __future__ import annotations

from mrjob.job import MRJob
from mrjob.protocol import JSONValueProtocol, RawValueProtocol

BATCH = 1000


class MRIngest(MRJob):
    INPUT_PROTOCOL = RawValueProtocol
    OUTPUT_PROTOCOL = JSONValueProtocol

    def configure_args(self):
        super().configure_args()
        self.add_passthru_arg(
            "--db", default="", help="hbase://HOST:PORT/TABLE the tasks load into"
        )
        self.add_passthru_arg("--max-pixels", type=int, default=0, help="pixel limit (0: default)")

    def mapper_init(self):
        from phashdb import open as open_index

        self.index = open_index(self.options.db) if self.options.db else None
        self.batch = []

    def mapper(self, _, line):
        from phashdb.decode import DEFAULT_MAX_PIXELS
        from phashdb.ingest import find_images, hash_file
        from phashdb.records import image_to_json

        for path in find_images([line.strip()]) if line.strip() else []:
            path, image = hash_file(path, self.options.max_pixels or DEFAULT_MAX_PIXELS)
            if isinstance(image, str):
                self.increment_counter("phashdb", "failed")
                yield None, {"failed": path, "error": image}
                continue
            self.increment_counter("phashdb", "hashed")
            self.batch.append(image)
            if len(self.batch) >= BATCH:
                self.flush()
            yield None, {"image": image_to_json(image), "loaded": self.index is not None}

    def mapper_final(self):
        self.flush()
        if self.index is not None:
            self.index.close()

    def flush(self):
        if self.index is not None and self.batch:
            self.index.insert(self.batch)
            self.increment_counter("phashdb", "loaded", len(self.batch))
        self.batch = []


if __name__ == "__main__":
    MRIngest.run()

"""Admission without a global lock: of several writers adding near-identical images at once,
exactly one stores its image as unique; and what a crashed writer leaves behind (`orphans`).

A writer first records a pending claim: its band cells and a claim cell (start time, lease
expiry, id) on its image number, but no record. Then it searches for other live claims within
the radius. Of two writers at least one sees the other (each searched after its own claim was
written). The order is (start time, id):
- a writer that sees an earlier live claim withdraws its own, waits until that claim is
  committed or gone, and starts over with a new claim (it will then see the stored image);
- a writer that sees only later live claims waits until each is committed or withdrawn (a
  later writer that saw it withdraws; one that did not see it goes ahead and commits);
- a writer that sees no live claim goes ahead: the index checks the stored images and stores
  its image if none is within the radius.
A claim is never a match: a verdict only names stored images. A claim's lease (a few seconds)
is renewed while its writer works, so a writer that died blocks others for one lease at most.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import numpy as np

from ..errors import StoreError
from ..records import Image
from . import keys
from .records import RecordTable
from .writes import Writer

LEASE = 5.0  # seconds a claim lives without renewal: how long a dead writer can block others
SETTLE = 120.0  # seconds a writer waits for rivals before giving up with an error
POLL = 0.03
NUMBER_BLOCK = 32  # image numbers a store takes from the counter at once for claims


@dataclass
class Claim:
    number: int
    image: Image
    started_ms: int
    committed: bool = False
    stop: threading.Event = field(default_factory=threading.Event)
    renewer: threading.Thread | None = None

    def stop_renewing(self) -> None:
        """Stop renewing the lease, and wait for a renewal under way (it must not write the
        claim cell again after a commit or withdrawal)."""
        self.stop.set()
        if self.renewer is not None and self.renewer is not threading.current_thread():
            self.renewer.join()


def _now_ms() -> int:
    return int(time.time() * 1000)


def write_claim(records: RecordTable, claim: Claim, lease: float = LEASE) -> None:
    """Write (or renew) the claim cell of `claim`, live for `lease` seconds from now."""
    records.put_claim(claim.number, claim.started_ms, _now_ms() + int(lease * 1000), claim.image.id)


def _renew(records: RecordTable, claim: Claim) -> None:
    while not claim.stop.wait(LEASE / 3):
        try:
            write_claim(records, claim)
        except StoreError:
            pass  # the next renewal (or the writer's own call) meets the failure too


def _settled(records: RecordTable, numbers: list[int]) -> bool:
    """Whether every claim of `numbers` is committed, withdrawn or dead."""
    now = _now_ms()
    states = records.read_numbers(numbers)
    return not any(
        n in states and states[n][0] is None and states[n][1] is not None and states[n][1][1] >= now
        for n in numbers
    )


class Admission:
    """The claims of one store's writers. `records` and `writer` are the store's tables and
    write path; `candidates(queries, radius)` its band search (image numbers within `radius`,
    whatever their records say)."""

    def __init__(
        self, records: RecordTable, writer: Writer,
        candidates: Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray, np.ndarray]],
    ) -> None:  # fmt: skip
        self.records, self.writer, self.candidates = records, writer, candidates
        self.pending: dict[str, Claim] = {}  # id -> Claim of this store's writers at work
        self._numbers: list[int] = []
        self._numbers_lock = threading.Lock()

    def next_number(self) -> int:
        """An image number for a claim, from a block this store took from the counter."""
        with self._numbers_lock:
            if not self._numbers:
                self._numbers = self.records.allocate(NUMBER_BLOCK)[::-1]
            return self._numbers.pop()

    def live_rivals(self, claim: Claim, radius: int) -> tuple[list[int], list[int]]:
        """Image numbers of the live claims within `radius` of the claim's image, not yet
        committed: (earlier ones, later ones)."""
        _, numbers, _ = self.candidates(np.array([claim.image.hash], np.uint64), radius)
        states = self.records.read_numbers(set(numbers.tolist()) - {claim.number})
        me = (claim.started_ms, claim.image.id)
        now = _now_ms()
        earlier, later = [], []
        for n, (record, pending) in states.items():
            if record is not None or pending is None or pending[1] < now:
                continue  # stored (an ordinary match), withdrawn, or a dead writer's claim
            (earlier if (pending[0], pending[2]) < me else later).append(n)
        return earlier, later

    def _start(self, image: Image) -> Claim:
        """A new claim of `image`: its band cells, its claim cell, its lease renewed."""
        claim = Claim(self.next_number(), image, _now_ms())
        self.writer.write_band_cells([(claim.number, image)], tag=claim.number)
        write_claim(self.records, claim)
        claim.renewer = threading.Thread(target=_renew, args=(self.records, claim), daemon=True)
        claim.renewer.start()
        return claim

    @contextmanager
    def claim(self, image: Image, radius: int) -> Iterator[Claim]:
        """Claim `image` for admission; yields the claim once no live rival claim needs
        waiting for. `commit` of the image inside stores it; leaving without one withdraws
        the claim."""
        deadline = time.monotonic() + SETTLE
        while True:
            current = self._start(image)
            try:
                while True:
                    earlier, later = self.live_rivals(current, radius)
                    if earlier or not later:
                        break
                    _wait(deadline, f"{self.records.url}: {image.id!r}")
                if not earlier:
                    self.pending[image.id] = current
                    yield current
                    return
            finally:
                current.stop_renewing()
                self.pending.pop(image.id, None)
                if not current.committed:
                    self.writer.remove_numbered([(current.number, current.image)])
            # An earlier writer is at work on a near copy: let it finish, then look again.
            while not _settled(self.records, earlier):
                _wait(deadline, f"{self.records.url}: {image.id!r}")

    def commit(self, image: Image) -> bool:
        """Commit this store's pending claim of `image` (its band cells are written): its
        keys' cells, the id cell, then the record, then the claim cell goes. False: no such claim."""
        claim = self.pending.get(image.id)
        if claim is None or claim.image.hash != image.hash or claim.committed:
            return False
        numbered = [(claim.number, image if image.added else replace(image, added=time.time()))]
        self.writer.write_key_cells(numbered, claim.number)  # (only an image stored has keys)
        self.records.put_ids(numbered)
        self.records.put_records(numbered)
        claim.committed = True
        claim.stop_renewing()  # the lease held until the record was written
        self.records.delete_claims([claim.number])
        return True


def _wait(deadline: float, what: str) -> None:
    """A pause before looking at rivals again; an error once `deadline` is past."""
    if time.monotonic() > deadline:
        raise StoreError(f"{what}: rival writers did not settle in {SETTLE:.0f} s")
    time.sleep(POLL)


def orphans(
    writer: Writer, *, repair: bool = False, min_age: float = 120.0
) -> list[tuple[str, int]]:
    """What crashed writers left in `writer`'s tables: band entries in cells older than `min_age` seconds whose
    image number has neither a record nor a live claim, as (id or '#number', hash); `repair`
    takes them out of their cells, with their dead claim cells and id cells
    that name no stored image."""
    old = _now_ms() - int(min_age * 1000)
    layout, row_bits, records = writer.layout, writer.row_bits, writer.records
    cells = []
    for result in writer.bands.scan():
        first = keys.band_set(result.row[0])
        band = result.row[0] - first
        width = layout.widths[band]
        for cell in result.columnValues:
            if cell.timestamp <= old:  # whole minutes: a cell may look a minute older
                value = keys.cell_value(result.row, cell.qualifier, width, row_bits)
                hashes, numbers = keys.parse_band_cells(layout, band, value, [cell.value])
                cells.append((first, hashes, numbers))
    states = records.read_numbers({n for _, _, numbers in cells for n in numbers.tolist()})
    now = _now_ms()

    def is_dead(n: int) -> bool:
        record, pending = states.get(n, (None, None))
        return record is None and (pending is None or pending[1] < now)

    found: dict[int, tuple[str, int]] = {}
    dead: dict[int, list[int]] = defaultdict(list)  # the hashes of each band set
    for first, hashes, numbers in cells:
        for n, h in zip(numbers.tolist(), hashes.tolist()):
            if is_dead(n):
                pending = states.get(n, (None, None))[1]
                dead[first].append(h)
                if first == 0 or n not in found:
                    found[n] = (pending[2] if pending else f"#{n}", h)
    if repair:
        for first, held in dead.items():
            if held:
                writer.drop_entries(set(found), held, first)
        records.delete_claims(found)
        records.table.delete_cells(_stale_ids(records, old))
    return sorted(found.values())


def _stale_ids(records: RecordTable, old: int) -> list[tuple[bytes, bytes]]:
    """Id cells older than `old` (ms) whose image number holds no record of that id (left by
    removals)."""
    pointers = [(row, q, n) for row, q, n, ts in records.id_cells() if ts <= old]
    states = records.read_numbers({n for _, _, n in pointers})
    return [
        (row, q)
        for row, q, n in pointers
        if states.get(n, (None,))[0] is None or keys.encode_id(states[n][0].id) != q
    ]

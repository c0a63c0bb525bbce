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
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import numpy as np

from ..errors import StoreError
from ..records import Image
from . import keys
from .keys import RECORD_FAMILY as I
from .thrift import hb

LEASE = 5.0  # seconds a claim lives without renewal: how long a dead writer can block others
SETTLE = 120.0  # seconds a writer waits for rivals before giving up with an error
POLL = 0.03


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


def write_claim(store, claim: Claim, lease: float = LEASE) -> None:
    row, _ = keys.number_cell(claim.number)
    value = keys.encode_claim(claim.started_ms, _now_ms() + int(lease * 1000), claim.image.id)
    put = hb.TPut(
        row=row, columnValues=[hb.TColumnValue(I, keys.claim_qualifier(claim.number), value)]
    )
    store.pool.call(lambda c: c.put(store._records, put))


def withdraw(store, claim: Claim) -> None:
    store.remove_numbered([(claim.number, claim.image)])


def _renew(store, claim: Claim) -> None:
    while not claim.stop.wait(LEASE / 3):
        try:
            write_claim(store, claim)
        except StoreError:
            pass  # the next renewal (or the writer's own call) meets the failure too


def live_rivals(store, claim: Claim, radius: int) -> tuple[list[int], list[int]]:
    """Image numbers of the live claims within `radius` of the claim's image, not yet
    committed: (earlier ones, later ones)."""
    _, numbers, _ = store.candidates(np.array([claim.image.hash], np.uint64), radius)
    states = store.read_numbers(set(numbers.tolist()) - {claim.number})
    me = (claim.started_ms, claim.image.id)
    now = _now_ms()
    earlier, later = [], []
    for n, (record, pending) in states.items():
        if record is not None or pending is None or pending[1] < now:
            continue  # stored (an ordinary match), withdrawn, or a dead writer's claim
        (earlier if (pending[0], pending[2]) < me else later).append(n)
    return earlier, later


def _unsettled(store, numbers: list[int]) -> list[int]:
    now = _now_ms()
    states = store.read_numbers(numbers)
    return [
        n
        for n in numbers
        if n in states
        and states[n][0] is None
        and states[n][1] is not None
        and states[n][1][1] >= now
    ]


@contextmanager
def claim(store, image: Image, radius: int):
    """Claim `image` for admission; yields no rivals (a claim is never a match) once no live
    rival claim needs waiting for. A `put` of the image inside commits the claim; leaving
    without one withdraws it."""
    deadline = time.monotonic() + SETTLE
    while True:
        current = Claim(store.next_number(), image, _now_ms())
        store.write_band_cells([(current.number, image)], tag=current.number)
        write_claim(store, current)
        current.renewer = threading.Thread(target=_renew, args=(store, current), daemon=True)
        current.renewer.start()
        try:
            while True:
                earlier, later = live_rivals(store, current, radius)
                if earlier or not later:
                    break
                if time.monotonic() > deadline:
                    raise StoreError(
                        f"{store.url}: {image.id!r}: rival writers did not settle in {SETTLE:.0f} s"
                    )
                time.sleep(POLL)
            if not earlier:
                store.pending[image.id] = current
                yield []
                return
        finally:
            current.stop_renewing()
            store.pending.pop(image.id, None)
            if not current.committed:
                withdraw(store, current)
        # An earlier writer is at work on a near copy: let it finish, then look again.
        while _unsettled(store, earlier):
            if time.monotonic() > deadline:
                raise StoreError(
                    f"{store.url}: {image.id!r}: rival writers did not settle in {SETTLE:.0f} s"
                )
            time.sleep(POLL)


def commit(store, image: Image) -> bool:
    """Commit the store's pending claim of `image` (its band cells are written): the id
    cell, then the record, then the claim cell goes."""
    claim = store.pending.get(image.id)
    if claim is None or claim.image.hash != image.hash or claim.committed:
        return False
    numbered = [(claim.number, image if image.added else replace(image, added=time.time()))]
    store.write_ids(numbered)
    store.write_records(numbered)
    claim.committed = True
    claim.stop_renewing()  # the lease held until the record was written
    row, _ = keys.number_cell(claim.number)
    store.delete_cells(store._records, [(row, keys.claim_qualifier(claim.number))], I)
    return True


def orphans(store, *, repair: bool = False, min_age: float = 120.0) -> list[tuple[str, int]]:
    """What crashed writers left: band entries in cells older than `min_age` seconds whose
    image number has neither a record nor a live claim, as (id or '#number', hash); `repair`
    takes them out of their cells, with their dead claim cells and id cells that name no
    stored image."""
    old = _now_ms() - int(min_age * 1000)
    cells = []
    for result in store.pool.scan(store._bands, b"", b""):
        band = result.row[0]
        width = store.layout.widths[band]
        for cell in result.columnValues:
            if cell.timestamp <= old:  # whole minutes: a cell may look a minute older
                value = keys.cell_value(result.row, cell.qualifier, width, store.row_bits)
                hashes, numbers = keys.parse_band_cells(store.layout, band, value, [cell.value])
                cells.append((hashes, numbers))
    states = store.read_numbers({n for _, numbers in cells for n in numbers.tolist()})
    now = _now_ms()

    def is_dead(n: int) -> bool:
        record, pending = states.get(n, (None, None))
        return record is None and (pending is None or pending[1] < now)

    found: dict[int, tuple[str, int]] = {}
    for hashes, numbers in cells:
        for n, h in zip(numbers.tolist(), hashes.tolist()):
            if is_dead(n):
                pending = states.get(n, (None, None))[1]
                found[n] = (pending[2] if pending else f"#{n}", h)
    if repair:
        store.drop_entries(set(found), [h for _, h in found.values()])
        store.delete_cells(
            store._records,
            [(keys.number_cell(n)[0], keys.claim_qualifier(n)) for n in found],
            I,
        )
        _stale_ids(store, old, repair=True)
    return sorted(found.values())


def _stale_ids(store, old: int, *, repair: bool) -> int:
    """Id cells whose image number holds no record of that id (left by removals)."""
    pointers = []
    for result in store.pool.scan(store._records, b"i", b"j"):
        for cell in result.columnValues:
            if cell.timestamp <= old:
                pointers.append((result.row, cell.qualifier, int.from_bytes(cell.value, "big")))
    states = store.read_numbers({n for _, _, n in pointers})
    stale = [
        (row, q)
        for row, q, n in pointers
        if states.get(n, (None,))[0] is None or keys.encode_id(states[n][0].id) != q
    ]
    if repair:
        store.delete_cells(store._records, stale, I)
    return len(stale)

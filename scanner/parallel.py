"""``socpipe scan --jobs N``: parsing and Sigma matching in N worker processes.

Parsing and matching are per event and stateless, and they are most of a scan's time; the
correlation windows and incidents are not (a brute force spans files and parts of files).
So workers read parts of the input (a file, a byte range of a large text file, a range of
chunks of a large EVTX file) and return only the events that matched, with the positions of
their rules in the rule list; this process correlates, builds the alerts and incidents and
writes them, in input order, so the alerts, their ids and the summary are those of a
one-process scan. An event that matches nothing never leaves its worker: what crosses is
the part to read (a path and two offsets) and the few events alerts are made of.

Parts are handed out from one queue, so a worker that is done takes the next part (work
stealing), and results are kept until their turn: a slow part holds back the output, and the
workers only once ``AHEAD_PER_JOB * jobs`` parts are done or in flight, the bound that keeps
memory flat whatever the input size.

Workers are forked after the rules are loaded and after this process has scanned the
beginning of the input itself (``ScanOptions.warm_up_secs``), so that they inherit the rule
groups, prefilter indexes and matchers it built instead of each building them again.
Compiled matchers are closures, which cannot be pickled: forking is what shares them.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from functools import cached_property

from socpipe.collectors.files import FileEventReader, FilePart, LineEventIds, ReadStats
from socpipe.collectors.parsers import ParseContext
from socpipe.core.errors import SocpipeError
from socpipe.core.event import Event
from socpipe.detectors.engine import SigmaEngine

#: Input per unit of work: big enough that a part's bookkeeping is negligible, small enough
#: that two cores share even a single file.
DEFAULT_PART_BYTES = 4 << 20
#: Parts in flight or waiting for their turn, per worker.
AHEAD_PER_JOB = 4


@dataclass
class PartResult:
    """What a worker found in one part: read counters, events per dataset, and the events
    that matched at least one rule with the positions of those rules in the rule list."""

    size: int
    stats: ReadStats
    datasets: Counter[str] = field(default_factory=Counter)
    matches: list[tuple[Event, list[int]]] = field(default_factory=list)

    def add(self, other: PartResult) -> None:
        """Count in the result of the part read after this one."""
        self.size += other.size
        self.stats.add(other.stats)
        self.datasets.update(other.datasets)
        self.matches.extend(other.matches)


@dataclass(frozen=True)
class PartScanner:
    """Reads and matches one part; lives in each forked worker."""

    engine: SigmaEngine
    context: ParseContext
    format_name: str
    max_line_bytes: int

    @cached_property
    def _positions(self) -> dict[int, int]:
        """Rule object -> its position in the rule list, which both processes share."""
        return {id(rule): position for position, rule in enumerate(self.engine.rules)}

    def scan(self, part: FilePart) -> PartResult:
        reader = FileEventReader(
            self.context, self.format_name, self.max_line_bytes, line_ids=False
        )
        identify = LineEventIds()
        result = PartResult(part.size, reader.stats)
        positions = self._positions
        for event in reader.read_part(part):
            result.datasets[event.get("event.dataset", "unknown")] += 1
            if rules := self.engine.match(event):
                identify(event)
                result.matches.append((event, [positions[id(rule)] for rule in rules]))
        return result


# The scanner the forked workers inherit (set just before the pool forks them).
_scanner: PartScanner | None = None


def _scan_batch(batch: list[FilePart]) -> PartResult:
    assert _scanner is not None, "worker started without a part scanner"
    result = PartResult(0, ReadStats())
    for part in batch:
        result.add(_scanner.scan(part))
    return result


def batches(parts: Iterable[FilePart], batch_bytes: int) -> Iterator[list[FilePart]]:
    """Consecutive parts together until they cover ``batch_bytes`` (0: each part alone): a
    small file handed over alone cost as much in the hand-over (a future, a pickled result)
    as reading it, on inputs of thousands of small files."""
    batch: list[FilePart] = []
    size = 0
    for part in parts:
        batch.append(part)
        size += part.size
        if size >= batch_bytes:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


class WorkerDied(SocpipeError):
    """A worker process ended without returning its part (killed, out of memory)."""


def scan_parts(
    scanner: PartScanner, parts: Iterable[FilePart], jobs: int, batch_bytes: int = 0
) -> Iterator[PartResult]:
    """The results of ``parts`` in their order, one per batch of parts (``batches``).

    concurrent.futures rather than multiprocessing.Pool: a Pool whose worker is killed waits
    forever for the lost part, an executor reports it.
    """
    global _scanner
    _scanner = scanner
    remaining = batches(parts, batch_bytes)
    context = multiprocessing.get_context("fork")
    executor = ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_worker_setup)
    try:
        # Submitted parts in input order; the first is the next to be returned. Workers take
        # the submitted parts in turn, so while the first is still being read the others go
        # on with the rest.
        ahead: deque[tuple[list[FilePart], Future[PartResult]]] = deque()

        def submit_next() -> None:
            batch = next(remaining, None)
            if batch is None:
                return
            try:
                future = executor.submit(_scan_batch, batch)
            except BrokenProcessPool as error:
                # A worker died since the last result: the pool takes no more parts. The part
                # it was reading is in flight and is reported first, in input order.
                future = Future()
                future.set_exception(error)
            ahead.append((batch, future))

        for _ in range(AHEAD_PER_JOB * jobs):
            submit_next()
        while ahead:
            batch, future = ahead.popleft()
            try:
                result = future.result()
            except BrokenProcessPool:
                part = batch[0]
                others = f" and {len(batch) - 1} more parts" if len(batch) > 1 else ""
                raise WorkerDied(
                    f"a scan worker died while reading {part.path} (bytes {part.start}-"
                    f"{part.end if part.end is not None else 'end'}){others}; out of memory?"
                ) from None
            submit_next()
            yield result
    finally:
        # On Ctrl-C or an error, parts not started yet are dropped instead of scanned.
        executor.shutdown(wait=True, cancel_futures=True)


def _worker_setup() -> None:
    # Ctrl-C reaches the whole process group; the main process stops the scan, so workers
    # must not die on it first (each would print a traceback).
    signal.signal(signal.SIGINT, signal.SIG_IGN)

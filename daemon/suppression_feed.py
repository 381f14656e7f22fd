"""The console's suppressions, reloaded by the detect stage; their counts written back.

A background thread (like the indicator poller) reloads the active suppressions from their
index every ``stages.suppressions_reload_secs`` and swaps them into the stage's
``Suppressor``; before each reload it adds the alerts each suppression held back since the
last time to the suppression's ``hits`` (read, add, write guarded by ``if_seq_no``: several
detect processes add their counts without losing each other's, and no script is needed).
Elasticsearch being away never stops detection: the last set stays in force, and unwritten
counts wait for the next round.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from datetime import UTC, datetime

from elasticsearch import ConflictError, Elasticsearch, NotFoundError

from socpipe.core import metrics
from socpipe.detectors.suppression import (
    MAX_SUPPRESSIONS,
    Suppression,
    SuppressionError,
    SuppressionHits,
    Suppressor,
    iso,
)

log = logging.getLogger(__name__)
WRITE_ATTEMPTS = 8


def load_suppressions(client: Elasticsearch, index: str, now: datetime) -> list[Suppression]:
    """The suppressions in force now; a malformed one is logged and left out."""
    response = client.search(
        index=index,
        query={
            "bool": {
                "filter": [{"range": {"expires": {"gt": iso(now)}}}],
                "must_not": [{"term": {"disabled": True}}],
            }
        },
        size=MAX_SUPPRESSIONS,
    )
    loaded = []
    for hit in response["hits"]["hits"]:
        try:
            loaded.append(Suppression.from_dict(hit["_source"], hit["_id"]))
        except SuppressionError as error:
            log.warning("suppression left out index=%s: %s", index, error)
    return loaded


def write_hits(
    client: Elasticsearch, index: str, hits: dict[str, SuppressionHits]
) -> dict[str, SuppressionHits]:
    """Add the counts to their suppressions; returns what could not be written yet."""
    unwritten = {}
    for ident, taken in hits.items():
        try:
            _add_hits(client, index, ident, taken)
        except NotFoundError:
            continue  # deleted meanwhile: nothing to count against
        except Exception as error:
            log.warning("suppression counts not written yet id=%s: %s", ident, error)
            unwritten[ident] = taken
    return unwritten


def _add_hits(client: Elasticsearch, index: str, ident: str, taken: SuppressionHits) -> None:
    for attempt in range(WRITE_ATTEMPTS):
        if attempt:
            time.sleep(random.uniform(0, 0.02 * attempt))  # others are writing: step aside
        current = client.get(index=index, id=ident)
        source = current["_source"]
        last = taken.last
        previous = source.get("last_hit")
        last_text = iso(last) if last else previous
        if previous and last_text and previous > last_text:
            last_text = previous
        try:
            client.update(
                index=index,
                id=ident,
                doc={"hits": int(source.get("hits") or 0) + taken.count, "last_hit": last_text},
                if_seq_no=current["_seq_no"],
                if_primary_term=current["_primary_term"],
            )
            return
        except ConflictError:
            continue  # another detect process wrote its count first: read again
    raise RuntimeError(f"suppression {ident} kept changing under {WRITE_ATTEMPTS} attempts")


class SuppressionPoller:
    """Keeps a Suppressor's set fresh and its counts written, until ``stop`` is set."""

    def __init__(
        self,
        client: Elasticsearch,
        index: str,
        suppressor: Suppressor,
        interval_secs: float,
        stop: threading.Event,
    ) -> None:
        self.client, self.index, self.suppressor = client, index, suppressor
        self.interval_secs, self.stop = interval_secs, stop
        self._unwritten: dict[str, SuppressionHits] = {}
        self.thread = threading.Thread(target=self._run, name="suppression-poller", daemon=True)

    def start(self) -> None:
        self.thread.start()

    @property
    def unwritten(self) -> int:
        """Hits taken but not yet written (Elasticsearch away, or contended writes)."""
        return sum(hits.count for hits in self._unwritten.values())

    def _run(self) -> None:
        while not self.stop.wait(self.interval_secs):
            self.poll_once()
        self.flush()

    def flush(self) -> None:
        """Write the counts taken so far (and those a failed write left)."""
        pending = self._unwritten
        for ident, taken in self.suppressor.take_hits().items():
            kept = pending.setdefault(ident, SuppressionHits())
            kept.count += taken.count
            if taken.last and (kept.last is None or taken.last > kept.last):
                kept.last = taken.last
        self._unwritten = write_hits(self.client, self.index, pending) if pending else {}

    def poll_once(self) -> None:
        self.flush()
        try:
            loaded = load_suppressions(self.client, self.index, datetime.now(UTC))
        except Exception as error:  # Elasticsearch away: keep the set in force
            log.warning("suppressions not reloaded, keeping %d: %s", len(self.suppressor), error)
            return
        self.suppressor.replace(loaded)
        metrics.SUPPRESSIONS_ACTIVE.set(len(loaded))
        log.info("suppressions loaded=%d index=%s", len(loaded), self.index)

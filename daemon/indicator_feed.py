"""Polling the national center's TAXII collection for indicators, on a schedule.

Each poll reads the whole collection into a fresh store and swaps it in, so revoked and
expired indicators disappear without bookkeeping; a failed poll keeps the previous store
and says so in the log. (For collections of many thousands of indicators, reading only what
was added since the last poll would be cheaper; not built.)
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from taxii2client.v21 import as_pages

from socpipe.core import metrics
from socpipe.core.config import IndicatorFeedConfig
from socpipe.detectors.indicators import IndicatorMatcher, IndicatorStore, load_bundle_files
from socpipe.forwarding.taxii_client import open_collection

log = logging.getLogger(__name__)
PAGE_SIZE = 500


def load_feed(config: IndicatorFeedConfig) -> IndicatorStore:
    """Every indicator the configuration names: bundle files, then the TAXII collection."""
    store = load_bundle_files(Path(path) for path in config.files)
    if config.url and config.collection:
        collection = open_collection(
            config.url,
            config.collection,
            config.tls,
            config.username_env,
            config.password_env,
            30.0,
            "socpipe.detectors.indicators",
        )
        source = f"taxii:{config.url.rstrip('/')}/collections/{config.collection}"
        for page in as_pages(collection.get_objects, per_request=PAGE_SIZE, type="indicator"):
            for item in page.get("objects", []):
                store.add_stix(item, source)
    return store


class IndicatorPoller:
    """Keeps a matcher's store fresh from the feed until ``stop`` is set."""

    def __init__(
        self, config: IndicatorFeedConfig, matcher: IndicatorMatcher, stop: threading.Event
    ) -> None:
        self.config, self.matcher, self.stop = config, matcher, stop
        self.thread = threading.Thread(target=self._run, name="indicator-poller", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(self.config.poll_secs):
            self.poll_once()

    def poll_once(self) -> None:
        try:
            store = load_feed(self.config)
        except Exception as error:  # a feed outage must never stop detection
            log.warning(
                "indicator poll failed, keeping %d indicators: %s", self.matcher.store.loaded, error
            )
            return
        self.matcher.store = store
        metrics.INDICATORS.set(store.loaded)
        log.info(
            "indicators loaded=%d unsupported=%d revoked=%d",
            store.loaded,
            store.unsupported,
            store.revoked,
        )

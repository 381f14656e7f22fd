"""Which agency an event comes from: the topic says, not the payload.

With per-agency topics (``kafka.event_topics: per_agency``) each agency's collector may write
only its own topic, so the topic name is the one statement about the agency that the broker
vouches for. The detect and index stages therefore set ``organization.id`` from it, whatever
the event claims: a compromised host or collector cannot file events, alerts or documents
under another agency. A claim that differs is kept for the analysts (the event is tagged
``socpipe_agency_mismatch`` and keeps the claim in ``socpipe.claimed_agency``), counted in
``socpipe_agency_mismatch_total`` and logged once per topic.
"""

from __future__ import annotations

import logging

from socpipe.core import metrics
from socpipe.core.agency import topic_agency
from socpipe.core.config import KafkaConfig
from socpipe.core.event import Event, add_tag

log = logging.getLogger(__name__)

MISMATCH_TAG = "socpipe_agency_mismatch"
CLAIM_FIELD = "socpipe.claimed_agency"
#: The claim kept is cut to this length: it is whatever the writer put there.
MAX_CLAIM_CHARS = 100


class AgencyGuard:
    """Gives each event of an agency topic that topic's agency (one per stage)."""

    def __init__(self, config: KafkaConfig, stage: str) -> None:
        self.prefix = config.topics.events
        self.enabled = config.per_agency
        self.stage = stage
        self._mismatches = metrics.AGENCY_MISMATCH.labels(stage)
        #: Topics whose mismatches were logged (one line per topic, then the metric counts).
        self._logged: set[str] = set()

    def enforce(self, topic: str, event: Event) -> bool:
        """Set ``organization.id`` from ``topic``; True when the event was changed. Events
        of other topics (alerts) and of a single events topic are left as they are."""
        if not self.enabled:
            return False
        agency = topic_agency(self.prefix, topic)
        if agency is None:
            return False
        claimed = event.get("organization.id")
        if claimed == agency:
            return False
        event["organization.id"] = agency
        if claimed is None:
            return True  # a producer that names no agency claims nothing
        # The name came with the false claim: it is the other agency's, or made up.
        event.pop("organization.name", None)
        event[CLAIM_FIELD] = str(claimed)[:MAX_CLAIM_CHARS]
        add_tag(event, MISMATCH_TAG)
        self._mismatches.inc()
        if topic not in self._logged:
            self._logged.add(topic)
            log.warning(
                "stage=%s topic=%s: an event claimed organization.id=%r; set to %r from the"
                " topic (further mismatches on this topic are only counted:"
                " socpipe_agency_mismatch_total)",
                self.stage,
                topic,
                str(claimed)[:MAX_CLAIM_CHARS],
                agency,
            )
        return True

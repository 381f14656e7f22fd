"""The forwarding ledger: what each destination did with each incident, for the record.

The forward stage writes one record per destination, incident, level and outcome to the
ledger topic; the index stage stores it in the forwarding index, where `socpipe forward
status --incident/--alert`, `socpipe forward report` and the console read it. The forward
stage does not write to Elasticsearch itself (forwarding never imports sinks), and the topic
keeps the record even while Elasticsearch is away.

Outcomes:

* ``acknowledged``: the receiver confirmed it (TAXII status complete, HTTP 2xx or 409, Kafka
  acknowledgement);
* ``sent``: the bytes left for a receiver that confirms nothing (syslog over TLS);
* ``refused``: the receiver refused it for good (HTTP 4xx, TAXII refusal); it was
  dead-lettered with the reason;
* ``deadlettered``: socpipe could not express it for that receiver (STIX, CEF): it never left
  the province, and was dead-lettered with the reason;
* ``skipped``: it was due (it reached the destination's level, or rose) but the destination's
  policy keeps it (rules, tags, agencies), with the reason.

A record's id is derived from the destination, the incident, its level and the outcome, so a
replayed batch writes nothing twice; its time is when the outcome happened the first time.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from typing import Any, Final

ACKNOWLEDGED: Final = "acknowledged"
SENT: Final = "sent"
REFUSED: Final = "refused"
DEADLETTERED: Final = "deadlettered"
SKIPPED: Final = "skipped"
OUTCOMES: Final = (ACKNOWLEDGED, SENT, REFUSED, DEADLETTERED, SKIPPED)
#: Outcomes that mean the incident reached the destination.
DELIVERED: Final = (ACKNOWLEDGED, SENT)
MAX_REASON_CHARS: Final = 2000


def ledger_id(destination: str, incident_id: str, level: str, outcome: str) -> str:
    text = "\x1f".join(("forward", destination, incident_id, level, outcome))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def ledger_record(
    destination: str,
    destination_type: str,
    incident: dict[str, Any],
    outcome: str,
    reason: str = "",
    receipt: str = "",
    attempts: int = 0,
    now: float | None = None,
) -> dict[str, Any]:
    """One ledger document (flat keys, like alerts and incidents)."""
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown forwarding outcome {outcome!r}")
    incident_id = str(incident["incident.id"])
    level = str(incident.get("incident.level", ""))
    moment = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    alert_ids = incident.get("incident.alert_ids")
    return {
        "@timestamp": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "forward.id": ledger_id(destination, incident_id, level, outcome),
        "forward.destination": destination,
        "forward.destination_type": destination_type,
        "forward.outcome": outcome,
        "forward.reason": reason[:MAX_REASON_CHARS],
        "forward.receipt": receipt[:MAX_REASON_CHARS],
        "forward.attempts": attempts,
        "incident.id": incident_id,
        "incident.level": level,
        "incident.title": str(incident.get("incident.title", "")),
        "incident.alert_count": int(incident.get("incident.alert_count", 0) or 0),
        "incident.alert_ids": list(alert_ids) if isinstance(alert_ids, list) else [],
        "organization.id": str(incident.get("organization.id", "unknown")),
        "rule.id": str(incident.get("rule.id", "")),
    }

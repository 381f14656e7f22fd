"""Reading the forwarding ledger back from Elasticsearch: per incident (or alert), and as a
daily volume per destination. The records are written by the index stage (see
socpipe.forwarding.ledger for what they say)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from elasticsearch import Elasticsearch, NotFoundError

from socpipe.core.config import ElasticsearchConfig

#: Ledger records shown for one incident at most (a destination and level each have at most
#: one record per outcome, so this is plenty).
MAX_ENTRIES = 1000
#: Agencies listed per destination in a daily report at most.
MAX_AGENCIES = 500


def _get(client: Elasticsearch, index: str, identifier: str) -> dict[str, Any] | None:
    try:
        return dict(client.get(index=index, id=identifier)["_source"])
    except NotFoundError:
        return None


def incident_document(
    client: Elasticsearch, config: ElasticsearchConfig, incident_id: str
) -> dict[str, Any] | None:
    return _get(client, config.incidents_index, incident_id)


def incident_of_alert(
    client: Elasticsearch, config: ElasticsearchConfig, alert_id: str
) -> str | None:
    """The incident an alert belongs to (alerts are stored under their id)."""
    alert = _get(client, config.alerts_index, alert_id)
    if alert is None or not alert.get("incident.id"):
        return None
    return str(alert["incident.id"])


def ledger_entries(
    client: Elasticsearch, config: ElasticsearchConfig, incident_id: str
) -> list[dict[str, Any]]:
    """What every destination did with the incident, oldest first."""
    try:
        response = client.search(
            index=config.forwarding_index,
            query={"term": {"incident.id": incident_id}},
            sort=[{"@timestamp": "asc"}],
            size=MAX_ENTRIES,
        )
    except NotFoundError:
        return []
    return [dict(hit["_source"]) for hit in response["hits"]["hits"]]


@dataclass
class DestinationVolume:
    """One destination's ledger records of one day."""

    records: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)
    #: Incidents forwarded (acknowledged or sent) per level and per agency.
    delivered_by_level: dict[str, int] = field(default_factory=dict)
    delivered_by_agency: dict[str, int] = field(default_factory=dict)


def _buckets(aggregation: dict[str, Any]) -> dict[str, int]:
    return {str(bucket["key"]): int(bucket["doc_count"]) for bucket in aggregation["buckets"]}


def daily_volume(
    client: Elasticsearch, config: ElasticsearchConfig, day: date
) -> dict[str, DestinationVolume]:
    """Per destination: the day's (UTC) records by outcome, and what was delivered by level
    and by agency."""
    start = day.isoformat()
    end = (day + timedelta(days=1)).isoformat()
    delivered = {"terms": {"forward.outcome": ["acknowledged", "sent"]}}
    try:
        response = client.search(
            index=config.forwarding_index,
            size=0,
            query={"range": {"@timestamp": {"gte": start, "lt": end}}},
            aggs={
                "destinations": {
                    "terms": {"field": "forward.destination", "size": 100},
                    "aggs": {
                        "outcomes": {"terms": {"field": "forward.outcome", "size": 10}},
                        "delivered": {
                            "filter": delivered,
                            "aggs": {
                                "levels": {"terms": {"field": "incident.level", "size": 10}},
                                "agencies": {
                                    "terms": {"field": "organization.id", "size": MAX_AGENCIES}
                                },
                            },
                        },
                    },
                }
            },
        )
    except NotFoundError:
        return {}
    volumes = {}
    for bucket in response["aggregations"]["destinations"]["buckets"]:
        volumes[str(bucket["key"])] = DestinationVolume(
            records=int(bucket["doc_count"]),
            by_outcome=_buckets(bucket["outcomes"]),
            delivered_by_level=_buckets(bucket["delivered"]["levels"]),
            delivered_by_agency=_buckets(bucket["delivered"]["agencies"]),
        )
    return volumes

"""Build the Elasticsearch index templates in config/elasticsearch/ from the ECS definitions.

    .venv/bin/python scripts/build_es_templates.py [path/to/ecs_flat.yml]

Field types come from ECS (``ecs_flat.yml``), not from hand-written mappings. Types that a
minimal Elasticsearch lacks (the test distribution has no mapper-extras, wildcard or
constant_keyword) fall back to ones every distribution has, so the product runs on any cluster.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "config" / "elasticsearch"
FALLBACK_TYPES = {
    "match_only_text": "text",
    "wildcard": "keyword",
    "constant_keyword": "keyword",
    "scaled_float": "float",
}
# Object-like ECS types: their leaves are mapped one by one or dynamically.
SKIPPED_TYPES = {"object", "nested", "flattened"}
KEPT_ATTRIBUTES = ("ignore_above", "index", "doc_values", "scaling_factor")
# socpipe's own fields beside ECS.
SOCPIPE_FIELDS: dict[str, dict[str, Any]] = {
    "url.decoded": {"type": "keyword", "ignore_above": 8191, "fields": {"text": {"type": "text"}}},
    "http.request.raw": {"type": "keyword", "ignore_above": 8191},
}
# Triage fields are written only as flat dotted keys with one value each (console/triage.py):
# a nested partial document ({"alert": {"status": ...}}) merged beside the dotted key would
# leave two values under one field.
ALERT_FIELDS: dict[str, dict[str, Any]] = {
    "alert.id": {"type": "keyword"},
    "alert.status": {"type": "keyword"},
    "alert.resolution": {"type": "keyword"},
    "alert.assignee": {"type": "keyword"},
    "alert.first_seen": {"type": "date"},
    "alert.last_seen": {"type": "date"},
    # When the detect stage raised the alert (the event time is @timestamp).
    "alert.detected": {"type": "date"},
    "alert.updated": {"type": "date"},
    "alert.updated_by": {"type": "keyword"},
    # Shown on the alert's page, searched in the audit index: not indexed here.
    "alert.history": {"type": "object", "enabled": False},
    "alert.notes": {"type": "object", "enabled": False},
    "rule.level": {"type": "keyword"},
    "incident.id": {"type": "keyword"},
    # The matched events are kept whole for the analyst but not indexed: their fields are
    # searchable in the events indices, and indexing them here would double the mapping.
    "events": {"type": "object", "enabled": False},
}
#: ECS field sets an incident gathers (its entities, rules, ATT&CK, agency).
INCIDENT_ECS_SETS = (
    "@timestamp",
    "tags",
    "event",
    "rule",
    "threat",
    "organization",
    "host",
    "source",
    "destination",
    "user",
    "url",
    "dns",
    "process",
    "file",
)
INCIDENT_FIELDS: dict[str, dict[str, Any]] = {
    "incident.id": {"type": "keyword"},
    "incident.title": {"type": "keyword", "fields": {"text": {"type": "text"}}},
    "incident.level": {"type": "keyword"},
    "incident.first_seen": {"type": "date"},
    "incident.last_seen": {"type": "date"},
    "incident.window_start": {"type": "date"},
    "incident.opened_by": {"type": "keyword"},
    "incident.alert_count": {"type": "long"},
    "incident.alert_ids": {"type": "keyword"},
    "incident.rule_ids": {"type": "keyword"},
    "incident.related_ids": {"type": "keyword"},
    # Member alerts and rules with their counts: shown, not searched (alerts are searchable
    # in the alerts index by incident.id).
    "incident.alerts": {"type": "object", "enabled": False},
    "incident.rules": {"type": "object", "enabled": False},
    # The analysts' part, written by triage only (never by the pipeline after creation).
    "incident.status": {"type": "keyword"},
    "incident.resolution": {"type": "keyword"},
    "incident.assignee": {"type": "keyword"},
    "incident.updated": {"type": "date"},
    "incident.history": {"type": "object", "enabled": False},
    "rule.level": {"type": "keyword"},
}
#: The forwarding ledger: one record per destination, incident, level and outcome.
FORWARDING_FIELDS: dict[str, dict[str, Any]] = {
    "@timestamp": {"type": "date"},
    "forward.id": {"type": "keyword"},
    "forward.destination": {"type": "keyword"},
    "forward.destination_type": {"type": "keyword"},
    "forward.outcome": {"type": "keyword"},
    "forward.reason": {
        "type": "keyword",
        "ignore_above": 2048,
        "fields": {"text": {"type": "text"}},
    },
    "forward.receipt": {"type": "keyword", "ignore_above": 1024},
    "forward.attempts": {"type": "long"},
    "incident.id": {"type": "keyword"},
    "incident.level": {"type": "keyword"},
    "incident.title": {"type": "keyword"},
    "incident.alert_count": {"type": "long"},
    "incident.alert_ids": {"type": "keyword"},
    "organization.id": {"type": "keyword"},
    "rule.id": {"type": "keyword"},
}
DYNAMIC_TEMPLATES = [
    {
        "strings_as_keywords": {
            "match_mapping_type": "string",
            "mapping": {"type": "keyword", "ignore_above": 1024},
        }
    }
]


def field_mapping(definition: dict[str, Any]) -> dict[str, Any] | None:
    kind = definition["type"]
    if kind in SKIPPED_TYPES:
        return None
    mapping: dict[str, Any] = {"type": FALLBACK_TYPES.get(kind, kind)}
    if kind == "scaled_float":
        return mapping
    for attribute in KEPT_ATTRIBUTES:
        if attribute in definition:
            mapping[attribute] = definition[attribute]
    multi = {
        extra["name"]: {"type": FALLBACK_TYPES.get(extra["type"], extra["type"])}
        for extra in definition.get("multi_fields", [])
        if extra["type"] not in SKIPPED_TYPES
    }
    if multi:
        mapping["fields"] = multi
    return mapping


def nest(flat: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Dotted field names -> the object tree of ``properties`` Elasticsearch expects."""
    root: dict[str, Any] = {}
    for name in sorted(flat):
        node = root
        parts = name.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {"properties": {}})
            if "properties" not in node:  # a leaf that also has children: skip the children
                break
            node = node["properties"]
        else:
            node.setdefault(parts[-1], flat[name])
    return root


ALERTS_REFRESH_INTERVAL = "500ms"


def template(
    patterns: list[str],
    fields: dict[str, dict[str, Any]],
    priority: int,
    extra_settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "index_patterns": patterns,
        "priority": priority,
        "template": {
            # ignore_malformed: an event with one bad value (an "IP" that is not one) is kept
            # and searchable, with that field listed in _ignored, instead of being rejected.
            "settings": {
                "index.mapping.total_fields.limit": 5000,
                "index.mapping.ignore_malformed": True,
                "number_of_replicas": 0,
                **(extra_settings or {}),
            },
            "mappings": {"dynamic_templates": DYNAMIC_TEMPLATES, "properties": nest(fields)},
        },
        "_meta": {"description": "socpipe: ECS mappings built by scripts/build_es_templates.py"},
    }


def build(ecs_flat: Path) -> dict[str, dict[str, Any]]:
    definitions = yaml.load(
        ecs_flat.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    )
    ecs = {
        name: mapping
        for name, definition in definitions.items()
        if (mapping := field_mapping(definition))
    }
    events = {**ecs, **SOCPIPE_FIELDS}
    alerts = {**events, **ALERT_FIELDS}
    incidents = {
        **{
            name: mapping
            for name, mapping in ecs.items()
            if name.split(".", 1)[0] in INCIDENT_ECS_SETS
        },
        **INCIDENT_FIELDS,
    }
    return {
        "soc-events": template(["soc-events-*"], events, 200),
        # Alerts are few and what analysts wait for: searchable within half a second instead
        # of the default second (the line-to-searchable-alert latency). Events keep 1 s.
        "soc-alerts": template(
            ["soc-alerts*"], alerts, 210, {"index.refresh_interval": ALERTS_REFRESH_INTERVAL}
        ),
        # What the queue shows first: as fresh as alerts.
        "soc-incidents": template(
            ["soc-incidents*"],
            incidents,
            210,
            {"index.refresh_interval": ALERTS_REFRESH_INTERVAL},
        ),
        "soc-forwarding": template(["soc-forwarding*"], FORWARDING_FIELDS, 210),
    }


def main() -> None:
    source = (
        Path(sys.argv[1])
        if len(sys.argv) > 1
        else REPO.parent / "shared" / "data" / "ecs" / "ecs_flat.yml"
    )
    OUT.mkdir(parents=True, exist_ok=True)
    for name, body in build(source).items():
        path = OUT / f"{name}.template.json"
        path.write_text(json.dumps(body, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()

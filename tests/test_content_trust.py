"""What a log line may not say about itself (issue 20: tags from the content were trusted):
socpipe's own tags and fields, and the agency, are socpipe's to set."""

from __future__ import annotations

import json

import pytest

from socpipe.collectors.parsers import ParseContext, get_parser
from socpipe.core.event import content_tags

CONTEXT = ParseContext("so-tttt", "So TT&TT")
CLAIMS = {
    "tags": ["socpipe_truncated", "SOCPIPE_Unparsed", "web", "socpipe-like"],
    "organization": {"id": "so-bca", "name": "Bo Cong An"},
    "organization.id": "so-bca",
    "socpipe": {"claimed_agency": "so-bca"},
}


@pytest.mark.parametrize(
    "document",
    [
        {"@timestamp": "2026-03-03T10:00:00Z", "message": "ecs", **CLAIMS},
        {"message": "any json", **CLAIMS},
        {
            "@timestamp": "2026-03-03T10:00:00Z",
            "winlog": {"channel": "Security", "event_id": 4625, "event_data": {}},
            **CLAIMS,
        },
    ],
    ids=["ecs", "generic", "winlogbeat"],
)
def test_a_json_record_cannot_set_socpipes_tags_fields_or_agency(document: dict) -> None:
    event = get_parser("json").parse(json.dumps(document), CONTEXT)
    assert event is not None
    assert event["tags"] == ["web", "socpipe-like"]
    assert event["organization.id"] == "so-tttt"
    assert event["organization.name"] == "So TT&TT"
    assert not [key for key in event if key.startswith("socpipe.")]


def test_a_lone_own_tag_leaves_no_tags_at_all() -> None:
    event = get_parser("json").parse('{"message": "x", "tags": "socpipe_unparsed"}', CONTEXT)
    assert event is not None and "tags" not in event
    assert content_tags("socpipe_x") == [] and content_tags(["a", 1, None]) == ["a", 1, None]

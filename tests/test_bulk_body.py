"""The index stage's bulk bodies, encoded once, reach the HTTP layer without another copy."""

from __future__ import annotations

import orjson

from socpipe.core.config import ElasticsearchConfig
from socpipe.sinks.elasticsearch import connect


def test_an_encoded_bulk_body_goes_out_as_it_is() -> None:
    client = connect(ElasticsearchConfig(hosts=["http://127.0.0.1:9"]))
    serializers = client.transport.serializers
    body = b'{"create":{"_index":"i","_id":"1"}}\n{"a":1}\n'
    for mimetype in ("application/x-ndjson", "application/vnd.elasticsearch+x-ndjson"):
        assert serializers.dumps(body, mimetype) is body


def test_other_bulk_bodies_are_still_encoded_line_by_line() -> None:
    client = connect(ElasticsearchConfig(hosts=["http://127.0.0.1:9"]))
    lines = [{"index": {"_index": "i"}}, {"message": "caf\u00e9"}]
    encoded = client.transport.serializers.dumps(lines, "application/x-ndjson")
    assert [orjson.loads(line) for line in encoded.splitlines()] == lines

"""Web access and error logs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from socpipe.collectors.parsers import ParseContext, get_parser, parse_detected
from socpipe.collectors.parsers.web import decode_url

CONTEXT = ParseContext(reference_time=datetime(2026, 3, 10, tzinfo=UTC))


def test_combined_format() -> None:
    line = '203.0.113.77 - frank [03/Mar/2026:10:15:32 +0700] "GET /search?q=%27%20or%201%3D1 HTTP/1.1" 200 5120 "https://ref.example/" "sqlmap/1.7"'
    event, parser = parse_detected(line, CONTEXT)
    assert parser.name == "web_access"
    assert event["@timestamp"] == "2026-03-03T03:15:32.000Z"
    assert event["source.ip"] == "203.0.113.77"
    assert event["user.name"] == "frank"
    assert event["http.request.method"] == "GET"
    assert event["url.original"] == "/search?q=%27%20or%201%3D1"
    assert event["url.path"] == "/search"
    assert event["url.query"] == "q=%27%20or%201%3D1"
    assert event["url.decoded"] == "/search?q=' or 1=1"
    assert event["http.version"] == "1.1"
    assert event["http.response.status_code"] == 200
    assert event["http.response.body.bytes"] == 5120
    assert event["http.request.referrer"] == "https://ref.example/"
    assert event["user_agent.original"] == "sqlmap/1.7"


def test_common_format_with_missing_size_and_hostname_client() -> None:
    line = 'client.example.org - - [03/Mar/2026:10:15:32 +0000] "HEAD / HTTP/1.0" 304 -'
    event = get_parser("web_access").parse(line, CONTEXT)
    assert event is not None
    assert event["source.domain"] == "client.example.org"
    assert "http.response.body.bytes" not in event
    assert "user_agent.original" not in event


def test_vhost_prefix_and_escaped_quotes() -> None:
    line = 'portal.example.gov:443 10.0.0.1 - - [03/Mar/2026:10:15:32 +0000] "GET /a\\"b HTTP/1.1" 404 10 "-" "agent \\"x\\""'
    event = get_parser("web_access").parse(line, CONTEXT)
    assert event is not None
    assert event["url.domain"] == "portal.example.gov"
    assert event["source.ip"] == "10.0.0.1"
    assert event["event.outcome"] == "failure"


def test_malformed_request_line_is_kept_raw() -> None:
    line = '10.0.0.1 - - [03/Mar/2026:10:15:32 +0000] "\\x16\\x03\\x01" 400 0 "-" "-"'
    event = get_parser("web_access").parse(line, CONTEXT)
    assert event is not None
    assert event["http.request.raw"] == "\\x16\\x03\\x01"
    assert "url.original" not in event


def test_double_encoding_is_decoded_but_original_kept() -> None:
    assert decode_url("/a%252e%252e%252f") == "/a../"
    assert decode_url("/q?x=a+b") == "/q?x=a b"


def test_apache_error_log_22_and_24() -> None:
    old, parser = parse_detected(
        "[Sun Dec 04 04:47:44 2005] [error] mod_jk child workerEnv in error state 6", CONTEXT
    )
    assert parser.name == "apache_error"
    assert old["log.level"] == "error"
    assert old["@timestamp"] == "2005-12-04T04:47:44.000Z"
    new = get_parser("apache_error").parse(
        "[Wed Oct 11 14:32:52.123456 2026] [core:error] [pid 35708:tid 4328636416] [client 198.51.100.7:5000] AH00037: Symbolic link not allowed",
        CONTEXT,
    )
    assert new is not None
    assert (new["apache.error.module"], new["process.pid"], new["source.ip"]) == (
        "core",
        35708,
        "198.51.100.7",
    )
    assert new["message"].startswith("AH00037")


@pytest.mark.parametrize(
    ("target", "extension"),
    [
        ("/uploads/shell.PHP?cmd=id", "php"),  # lower-cased; the query is not the name
        ("/backup/site.tar.gz", "gz"),
        ("/v1.2/status", None),  # a dot in a folder, none in the name
        ("/download.", None),
        ("/", None),
        ("index.jsp", "jsp"),  # no slash at all
    ],
)
def test_url_extension_is_that_of_the_last_path_segment(target: str, extension: str | None) -> None:
    line = f'203.0.113.77 - - [03/Mar/2026:10:15:32 +0000] "GET {target} HTTP/1.1" 200 1'
    event = get_parser("web_access").parse(line, CONTEXT)
    assert event is not None
    assert event.get("url.extension") == extension

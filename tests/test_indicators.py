"""Indicators: STIX patterns, constant-time lookups, validity windows, `scan --indicators`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from socpipe.detectors.indicators import IndicatorMatcher, IndicatorStore, comparisons
from socpipe.pipeline import main


def indicator(pattern: str, number: int = 1, **extra: object) -> dict:
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--00000000-0000-4000-8000-{number:012d}",
        "created": "2026-01-01T00:00:00.000Z",
        "modified": "2026-01-01T00:00:00.000Z",
        "name": f"national indicator {number}",
        "pattern": pattern,
        "pattern_type": "stix",
        "valid_from": "2026-01-01T00:00:00Z",
        **extra,
    }


def event(**fields: object) -> dict:
    return {"@timestamp": "2026-03-03T10:00:00.000Z", "event.id": "e1", **fields}


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("[ipv4-addr:value = '203.0.113.5']", [("ip", "203.0.113.5")]),
        ("[ipv4-addr:value ISSUBSET '198.51.100.0/24']", [("cidr", "198.51.100.0/24")]),
        ("[domain-name:value = 'evil.example'] OR [url:value = 'http://x.example/a']",
         [("domain", "evil.example"), ("url", "http://x.example/a")]),
        ("[file:hashes.'SHA-256' = 'ABCD']", [("hash", "ABCD")]),
        ("[file:name = 'x.exe']", None),
        ("[ipv4-addr:value = '1.2.3.4' AND ipv4-addr:value = '5.6.7.8']", None),
        ("[domain-name:value = 'a.example'] FOLLOWEDBY [domain-name:value = 'b.example']", None),
    ],
)  # fmt: skip
def test_patterns_socpipe_can_match(pattern: str, expected: list | None) -> None:
    assert comparisons(pattern) == expected


def test_store_matches_addresses_networks_domains_urls_and_hashes() -> None:
    store = IndicatorStore()
    for number, pattern in enumerate(
        [
            "[ipv4-addr:value = '203.0.113.5']",
            "[ipv4-addr:value ISSUBSET '198.51.100.0/24']",
            "[ipv6-addr:value ISSUBSET '2001:db8::/32']",
            "[domain-name:value = 'evil.example']",
            "[url:value = 'http://x.example/payload.sh']",
            "[file:hashes.'SHA-256' = 'AABBCC']",
            "[file:name = 'unsupported.exe']",
        ],
        1,
    ):
        store.add_stix(indicator(pattern, number), "test-feed")
    assert (store.loaded, store.unsupported) == (6, 1)

    def matched(**fields: object) -> list[str]:
        return [hit.indicator.id[-1] for hit in store.lookup(event(**fields))]

    assert matched(**{"source.ip": "203.0.113.5"}) == ["1"]
    assert matched(**{"destination.ip": "198.51.100.200"}) == ["2"]
    assert matched(**{"source.ip": "198.51.101.1"}) == []
    assert matched(**{"source.ip": "2001:db8:1::9"}) == ["3"]
    assert matched(**{"dns.question.name": "cdn.evil.example."}) == ["4"]
    assert matched(**{"url.domain": "notevil.example"}) == []
    assert matched(**{"url.original": "http://x.example/payload.sh"}) == ["5"]
    assert matched(**{"file.hash.sha256": "aabbcc"}) == ["6"]
    assert matched(**{"source.ip": "not an address"}) == []


def test_validity_window_and_revocation() -> None:
    store = IndicatorStore()
    store.add_stix(
        indicator("[ipv4-addr:value = '203.0.113.5']", 1, valid_until="2026-02-01T00:00:00Z"),
        "feed",
    )
    store.add_stix(indicator("[ipv4-addr:value = '203.0.113.6']", 2, revoked=True), "feed")
    matcher = IndicatorMatcher(store)
    assert matcher.observe(event(**{"source.ip": "203.0.113.5"})) == []
    early = {"@timestamp": "2026-01-15T00:00:00.000Z", "source.ip": "203.0.113.5"}
    [alert] = matcher.observe({**event(), **early})
    document = alert.to_dict()
    assert document["indicator.id"].endswith("000000000001")
    assert document["threat.indicator.provider"] == "feed"
    assert document["indicator.matched_field"] == "source.ip"
    assert store.revoked == 1
    assert matcher.observe(event(**{"source.ip": "203.0.113.6"})) == []


def test_scan_matches_an_indicator_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bundle = tmp_path / "national.json"
    bundle.write_text(
        json.dumps(
            {
                "type": "bundle",
                "id": "bundle--00000000-0000-4000-8000-000000000001",
                "objects": [indicator("[ipv4-addr:value = '203.0.113.50']")],
            }
        )
    )
    log = tmp_path / "auth.log"
    log.write_text(
        "Mar  3 10:00:00 web01 sshd[1]: Accepted password for hanh from 203.0.113.50 port 5 ssh2\n"
        "Mar  3 10:00:01 web01 sshd[1]: Accepted password for hanh from 10.20.0.8 port 5 ssh2\n"
    )
    out = tmp_path / "alerts.jsonl"
    arguments = ["scan", str(log), "--indicators", str(bundle), "--out", str(out), "--no-progress"]
    assert main(arguments) == 0
    assert "; 1 indicators" in capsys.readouterr().err
    alerts = [json.loads(line) for line in out.read_text().splitlines()]
    hits = [alert for alert in alerts if alert["rule.id"] == "socpipe-indicator-match"]
    assert [hit["source.ip"] for hit in hits] == ["203.0.113.50"]
    assert hits[0]["threat.indicator.name"] == "national indicator 1"
    bundle.write_text("{not json")
    assert main(arguments) == 1
    assert "national.json: not a readable STIX bundle" in capsys.readouterr().err

"""Events from other producers: JSON on the events topic or JSON lines given to `scan` may
type a field differently from socpipe's parsers (numbers, lists, objects). Parsing and
detection must still run on them: the hot path is compiled, and compiled code refuses a value
whose type differs from an annotation where the interpreter would have carried on."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path

import pytest

from socpipe.collectors.parsers import ParseContext, base, parse_detected
from socpipe.detectors.detection import Detector
from socpipe.detectors.rules import load_rules
from tests.conftest import REPO

ROOT_LOGIN = {
    "@timestamp": "2026-03-03T03:00:01.000Z",
    "event.original": "Accepted password for root from 203.0.113.5 port 50000 ssh2",
    "event.kind": "event",
    "event.module": "system",
    "event.dataset": "system.auth",
    "process.name": "sshd",
    "event.category": ["authentication"],
    "event.action": "ssh_login",
    "event.outcome": "success",
    "user.name": "root",
    "source.ip": "203.0.113.5",
    "organization.id": "so-a",
    "event.id": "e1",
    "host.name": "web01",
}
ODD_VALUES = [7, 1.5, True, None, ["a", "b"], {"k": "v"}]


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector(load_rules([REPO / "rules"]))


def test_the_reference_event_raises_the_root_login_alert(detector: Detector) -> None:
    titles = [alert.rule.title for alert in detector.process(dict(ROOT_LOGIN))]
    assert titles == ["SSH Login As Root Accepted"]


@pytest.mark.parametrize("field", sorted(ROOT_LOGIN))
@pytest.mark.parametrize("value", ODD_VALUES, ids=repr)
def test_an_oddly_typed_field_never_breaks_detection(
    detector: Detector, field: str, value: object
) -> None:
    event = {**ROOT_LOGIN, field: value}
    for alert in detector.process(event):
        alert.to_dict()


@pytest.mark.parametrize("field", ["organization.id", "@timestamp", "event.id", "host.name"])
@pytest.mark.parametrize("value", [7, ["a", "b"]], ids=repr)
def test_fields_the_rule_does_not_test_do_not_change_its_verdict(
    detector: Detector, field: str, value: object
) -> None:
    alerts = detector.process({**ROOT_LOGIN, field: value})
    assert [alert.rule.title for alert in alerts] == ["SSH Login As Root Accepted"]
    document = alerts[0].to_dict()
    if field == "organization.id":
        assert document["organization.id"] == str(value)


def test_scan_counts_an_event_whose_dataset_is_a_number(tmp_path: Path) -> None:
    from socpipe.scanner.run import ScanOptions, run_scan

    source = tmp_path / "events.json"
    source.write_text(
        '{"@timestamp": "2026-03-03T03:00:01Z", "event.dataset": 5, "message": "x"}\n'
    )
    summary = run_scan(
        ScanOptions(paths=[source], progress=False), rules=load_rules([REPO / "rules"])
    )
    assert summary.read.events == 1
    assert sum(summary.by_dataset.values()) == 1


def key_paths(document: dict, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for key, value in document.items():
        yield (*prefix, key)
        if isinstance(value, dict):
            yield from key_paths(value, (*prefix, key))


def json_documents() -> list[dict]:
    """Winlogbeat records from the samples, an NXLog record and an ECS document."""
    lines = (REPO / "samples" / "windows" / "winlogbeat-security.json").read_text().splitlines()
    return [
        *(json.loads(line) for line in lines[:10]),
        {
            "EventID": 4625,
            "Channel": "Security",
            "SourceName": "Microsoft-Windows-Security-Auditing",
            "Hostname": "pc01",
            "EventTime": "2026-03-02 01:00:08",
            "TargetUserName": "thanhnv",
            "Message": "An account failed to log on.",
        },
        {
            "@timestamp": "2026-03-02T01:00:08Z",
            "event": {"module": "custom", "dataset": "custom.app"},
            "user": {"name": "thanhnv"},
            "message": "login",
        },
    ]


def test_json_lines_with_any_value_of_any_type_become_events() -> None:
    context = ParseContext(agency_id="so-a")
    checked = 0
    for document in json_documents():
        for path in key_paths(document):
            for value in ODD_VALUES:
                changed = copy.deepcopy(document)
                node = changed
                for key in path[:-1]:
                    node = node[key]
                node[path[-1]] = value
                line = json.dumps(changed)
                event, parser = parse_detected(line, context)
                # The JSON parser itself copes: not its failure caught and the line kept raw.
                assert parser.name == "json", line
                assert event["event.original"] == line
                assert event["organization.id"] == "so-a"
                checked += 1
    assert checked > 500


def test_ecs_json_keeps_its_fields_when_module_and_dataset_are_numbers() -> None:
    line = '{"@timestamp": "2026-03-02T01:00:08Z", "event.module": 5, "event.dataset": 6, "user.name": "u"}'
    event, parser = parse_detected(line, ParseContext())
    assert parser.name == "json"
    assert (event["event.module"], event["event.dataset"], event["user.name"]) == ("5", "6", "u")


class UnreadableZone(tzinfo):
    """A zone whose offset cannot be computed: makes the syslog parser fail inside."""

    def utcoffset(self, moment: datetime | None) -> timedelta:
        raise RuntimeError("zone data unreadable")

    def dst(self, moment: datetime | None) -> timedelta:
        return timedelta(0)

    def tzname(self, moment: datetime | None) -> str:
        return "unreadable"


def test_a_parser_failing_inside_keeps_the_line_and_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    base._REPORTED_FAILURES.discard(("syslog", "RuntimeError"))
    context = ParseContext(zone=UnreadableZone(), reference_time=datetime(2026, 3, 10, tzinfo=UTC))
    lines = [f"Mar  3 10:00:0{n} web01 sshd[1]: Connection closed by 10.0.0.{n}" for n in (1, 2)]
    with caplog.at_level(logging.WARNING):
        parsed = [parse_detected(line, context) for line in lines]
    assert [(parser.name, event["message"]) for event, parser in parsed] == [
        ("generic", line) for line in lines
    ]
    warnings = [r.getMessage() for r in caplog.records if "parser failed" in r.getMessage()]
    assert len(warnings) == 1
    assert "parser=syslog reason=RuntimeError: zone data unreadable" in warnings[0]

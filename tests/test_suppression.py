"""Suppressions in detection: matching, expiry, counts, the exported file, and the scan."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from socpipe.detectors.alert import Alert
from socpipe.detectors.rules import load_rules
from socpipe.detectors.suppression import (
    MAX_DAYS,
    Suppression,
    SuppressionError,
    Suppressor,
    export_document,
    load_file,
)
from socpipe.scanner.run import ScanOptions, run_scan
from tests.conftest import REPO

NOW = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)


class Rule:
    def __init__(self, rule_id: str) -> None:
        self.id, self.title, self.level, self.tags = rule_id, rule_id, "high", ()
        self.source, self.description, self.author, self.references = "", "", "", ()
        self.ruleset = ""


def alert(
    rule_id: str = "r1", agency: str = "so-a", entities: dict[str, object] | None = None
) -> Alert:
    entities = entities or {}
    return Alert(
        id=f"{rule_id}-{agency}-{sorted(entities.items())}",
        rule=Rule(rule_id),
        timestamp="2026-03-03T09:00:00.000Z",
        agency=agency,
        entities=dict(entities),
        events=(),
        first_seen="2026-03-03T09:00:00.000Z",
        last_seen="2026-03-03T09:00:00.000Z",
    )


def suppression(
    ident: str = "s1", rule_id: str = "r1", days: float = 7, fields: dict[str, str] | None = None
) -> Suppression:
    fields = fields or {}
    return Suppression(
        id=ident,
        rule_id=rule_id,
        fields=tuple(fields.items()) or (("organization.id", "so-a"),),
        created=NOW - timedelta(days=1),
        expires=NOW - timedelta(days=1) + timedelta(days=days),
        reason="scanner of the SOC",
    )


def test_every_field_must_match_and_the_rule_too() -> None:
    rule = suppression(fields={"organization.id": "so-a", "source.ip": "10.0.0.5"})
    suppressor = Suppressor([rule])
    assert suppressor.match(alert(entities={"source.ip": "10.0.0.5"}), NOW) is rule
    assert suppressor.match(alert(entities={"source.ip": "10.0.0.6"}), NOW) is None
    assert suppressor.match(alert(agency="so-b", entities={"source.ip": "10.0.0.5"}), NOW) is None
    assert suppressor.match(alert("r2", entities={"source.ip": "10.0.0.5"}), NOW) is None
    assert suppressor.match(alert(), NOW) is None  # the field is missing: not suppressed


def test_values_compare_as_text_and_lists_match_any() -> None:
    suppressor = Suppressor([suppression(fields={"destination.port": "22", "tags": "x"})])
    assert suppressor.match(alert(entities={"destination.port": 22, "tags": ["y", "x"]}), NOW)
    assert not suppressor.match(alert(entities={"destination.port": 22, "tags": ["y"]}), NOW)


def test_correlation_group_fields_can_be_named() -> None:
    correlated = Alert(
        id="c",
        rule=Rule("corr"),
        timestamp="t",
        agency="multiple",
        entities={},
        events=(),
        first_seen="t",
        last_seen="t",
        details={"correlation.group": {"source.ip": "198.51.100.7"}},
    )
    suppressor = Suppressor([suppression(rule_id="corr", fields={"source.ip": "198.51.100.7"})])
    assert suppressor.match(correlated, NOW) is not None


def test_expired_and_disabled_ones_stop_applying_without_a_reload() -> None:
    rule = suppression(days=2)
    suppressor = Suppressor([rule])
    assert suppressor.match(alert(), NOW) is rule
    assert suppressor.match(alert(), rule.expires) is None
    ended = Suppressor([Suppression(**{**rule.__dict__, "disabled": True})])
    assert ended.match(alert(), NOW) is None


def test_hits_are_counted_per_suppression_and_handed_over_once() -> None:
    first, second = suppression("s1"), suppression("s2", rule_id="r2")
    suppressor = Suppressor([first, second])
    kept = suppressor.filter([alert(), alert(), alert("r2"), alert(agency="so-b")], NOW)
    assert [a.agency for a in kept] == ["so-b"]
    assert suppressor.counts() == {"s1": 2, "s2": 1}
    taken = suppressor.take_hits()
    assert {k: v.count for k, v in taken.items()} == {"s1": 2, "s2": 1}
    assert taken["s1"].last == NOW
    assert suppressor.take_hits() == {}


def test_replace_swaps_the_set_while_matching_goes_on() -> None:
    suppressor = Suppressor([suppression()])
    stop = threading.Event()

    def match_forever() -> None:
        while not stop.is_set():
            suppressor.filter([alert()], NOW)

    worker = threading.Thread(target=match_forever)
    worker.start()
    for _ in range(200):
        suppressor.replace([suppression("s2")])
        suppressor.replace([suppression("s1")])
    stop.set()
    worker.join()
    assert set(suppressor.take_hits()) <= {"s1", "s2"}


def test_a_suppression_must_expire_within_the_limit() -> None:
    with pytest.raises(SuppressionError, match=f"more than {MAX_DAYS} days"):
        suppression(days=MAX_DAYS + 0.01)
    with pytest.raises(SuppressionError, match="expires before"):
        suppression(days=-1)
    with pytest.raises(SuppressionError, match="at least one field"):
        Suppression("s", "r", (), NOW, NOW + timedelta(days=1))
    assert suppression(days=MAX_DAYS).expires == NOW - timedelta(days=1) + timedelta(days=MAX_DAYS)


def test_exported_file_round_trips_and_bad_files_name_the_entry(tmp_path: Path) -> None:
    path = tmp_path / "suppressions.json"
    original = [suppression(fields={"source.ip": "10.0.0.5"}), suppression("s2", rule_id="r2")]
    path.write_text(json.dumps(export_document(original, NOW)))
    assert load_file(path) == original
    document = export_document(original, NOW)
    document["suppressions"][1]["expires"] = "2099-01-01T00:00:00Z"
    path.write_text(json.dumps(document))
    with pytest.raises(
        SuppressionError, match=r"suppressions\[1\]: suppression s2: expires more than"
    ):
        load_file(path)
    path.write_text("[1, 2]")
    with pytest.raises(SuppressionError, match="'suppressions' list"):
        load_file(path)
    with pytest.raises(SuppressionError, match="cannot read"):
        load_file(tmp_path / "missing.json")


def test_scan_counts_suppressed_alerts_instead_of_writing_them(tmp_path: Path) -> None:
    rules = load_rules([REPO / "rules"])
    plain = tmp_path / "plain.jsonl"
    run_scan(
        ScanOptions(
            paths=[REPO / "samples" / "linux"], out=plain, progress=False, agency_id="so-a"
        ),
        rules=rules,
    )
    alerts = [json.loads(line) for line in plain.read_text().splitlines()]
    target = next(a for a in alerts if a.get("source.ip"))
    same = [
        a
        for a in alerts
        if a["rule.id"] == target["rule.id"] and a.get("source.ip") == target["source.ip"]
    ]
    now = datetime.now(UTC)
    rule = Suppression(
        id="s-scan",
        rule_id=target["rule.id"],
        fields=(("source.ip", target["source.ip"]),),
        created=now,
        expires=now + timedelta(days=1),
    )
    for jobs in (1, 2):
        out = tmp_path / f"suppressed-{jobs}.jsonl"
        suppressor = Suppressor([rule])
        run_scan(
            ScanOptions(
                paths=[REPO / "samples" / "linux"],
                out=out,
                progress=False,
                agency_id="so-a",
                jobs=jobs,
            ),
            rules=rules,
            suppressor=suppressor,
        )
        kept = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(kept) == len(alerts) - len(same)
        assert not [a for a in kept if a["alert.id"] in {s["alert.id"] for s in same}]
        assert suppressor.counts() == {"s-scan": len(same)}


def test_scan_command_reports_what_suppressions_held_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from socpipe.pipeline import main

    plain = tmp_path / "plain.jsonl"
    assert (
        main(["scan", str(REPO / "samples" / "linux"), "--out", str(plain), "--no-progress"]) == 0
    )
    target = next(
        json.loads(line)
        for line in plain.read_text().splitlines()
        if json.loads(line).get("source.ip")
    )
    now = datetime.now(UTC)
    exported = tmp_path / "suppressions.json"
    rule = Suppression(
        "s1",
        target["rule.id"],
        (("source.ip", target["source.ip"]),),
        now,
        now + timedelta(days=1),
        rule_name=target["rule.name"],
    )
    exported.write_text(json.dumps(export_document([rule], now)))
    capsys.readouterr()
    out = tmp_path / "out.jsonl"
    assert (
        main(
            [
                "scan",
                str(REPO / "samples" / "linux"),
                "--out",
                str(out),
                "--no-progress",
                "--suppressions",
                str(exported),
            ]
        )
        == 0
    )
    held = len(plain.read_text().splitlines()) - len(out.read_text().splitlines())
    assert held > 0
    report = capsys.readouterr().err
    assert f"suppressed: {held} alerts by 1 of 1 suppressions" in report
    assert f"{held}  {target['rule.name']} (s1)" in report
    exported.write_text('{"suppressions": [{"rule.id": "r"}]}')
    assert (
        main(
            [
                "scan",
                str(REPO / "samples" / "linux"),
                "--suppressions",
                str(exported),
                "--no-progress",
            ]
        )
        == 1
    )
    assert f"{exported}: suppressions[0]" in capsys.readouterr().err

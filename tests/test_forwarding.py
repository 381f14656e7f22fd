"""Forwarding logic without peers: selection, minimisation, pacing, retries, CEF and STIX."""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path

import pytest
import stix2
import yaml

from socpipe.collectors.parsers import ParseContext, parse_detected
from socpipe.core.config import (
    Config,
    DestinationBase,
    ForwardingConfig,
    ForwardPolicyConfig,
    KafkaDestinationConfig,
    MinimiseConfig,
    SyslogDestinationConfig,
    TaxiiDestinationConfig,
    WebhookDestinationConfig,
    config_document,
    load_config,
)
from socpipe.core.errors import ConfigError
from socpipe.daemon.runner import build_forward_stages
from socpipe.forwarding.cef import cef_line, syslog_frame
from socpipe.forwarding.delivery import (
    Backoff,
    CircuitBreaker,
    DestinationUnavailable,
    PermanentError,
    TransientError,
    UnsendableError,
    deliver,
)
from socpipe.forwarding.destinations.base import build_destination
from socpipe.forwarding.ledger import ledger_id, ledger_record
from socpipe.forwarding.policy import Minimiser, RateLimiter, Selection
from socpipe.forwarding.start import parse_start
from socpipe.forwarding.stix import incident_bundle


def string_values(document: object) -> list[str]:
    if isinstance(document, dict):
        return [text for value in document.values() for text in string_values(value)]
    if isinstance(document, list):
        return [text for value in document for text in string_values(value)]
    return [document] if isinstance(document, str) else []


def by_rule(alerts: list[dict], name: str) -> dict:
    return next(alert for alert in alerts if alert["rule.name"] == name)


def by_title(incidents: list[dict], title: str) -> dict:
    return next(incident for incident in incidents if incident["incident.title"] == title)


def test_an_incident_is_due_when_it_reaches_the_level_and_when_it_rises() -> None:
    high = Selection(ForwardPolicyConfig(min_level="high"))

    def update(level: str, previous: str | None) -> dict:
        return {"incident.level": level, "incident.previous_level": previous}

    assert high.due(update("high", None))  # opens at the level
    assert high.due(update("critical", None))
    assert not high.due(update("medium", None))  # opens below
    assert high.due(update("high", "medium"))  # rises to the level
    assert high.due(update("critical", "high"))  # rises above what was forwarded
    assert not high.due(update("high", "high"))  # grows at the same level: never per alert
    assert not high.due(update("medium", "low"))  # rises, but stays below
    assert not high.due(update("high", "critical"))  # never seen: levels do not fall


def test_selection_by_level_rule_tag_and_agency(sample_incidents: list[dict]) -> None:
    critical = by_title(sample_incidents, "Account Created With UID 0")
    low = by_title(sample_incidents, "Crontab Replaced")
    assert Selection(ForwardPolicyConfig(min_level="high")).refusal(critical) is None
    assert Selection(ForwardPolicyConfig(min_level="high")).refusal(low) == "level below high"
    only = ForwardPolicyConfig(include_rules=[critical["rule.id"]])
    assert Selection(only).refusal(low) == "no included rule"
    assert Selection(only).refusal(critical) is None
    # Excluded only when every rule (or tag) of the incident is.
    assert len(critical["incident.rule_ids"]) == 2
    one_rule = ForwardPolicyConfig(exclude_rules=[critical["rule.id"]])
    assert Selection(one_rule).refusal(critical) is None
    every_rule = ForwardPolicyConfig(exclude_rules=critical["incident.rule_ids"])
    assert Selection(every_rule).refusal(critical) == "every rule excluded"
    every_tag = ForwardPolicyConfig(exclude_tags=critical["tags"])
    assert Selection(every_tag).refusal(critical) == "every tag excluded"
    assert Selection(ForwardPolicyConfig(include_tags=["attack.t9999"])).refusal(critical)
    assert Selection(ForwardPolicyConfig(include_agencies=["so-yte"])).refusal(critical)
    assert Selection(ForwardPolicyConfig(exclude_agencies=["so-tttt"])).refusal(critical)
    with pytest.raises(ConfigError, match="min_level"):
        Selection(ForwardPolicyConfig(min_level="urgent"))


def test_minimisation_drops_and_hashes_everywhere_and_keeps_the_original(
    sample_alerts: list[dict], sample_incidents: list[dict]
) -> None:
    alert = by_rule(sample_alerts, "SSH Login As Root Accepted")
    settings = MinimiseConfig(drop_fields=["host.name"], hash_fields=["user.name", "source.ip"])
    minimised = Minimiser(settings, b"province-key").apply(alert)
    text = json.dumps(minimised)
    for removed in ('"event.original"', '"message"', '"host.name"', alert["source.ip"]):
        assert removed not in text
    assert alert["user.name"] not in set(string_values(minimised))
    assert minimised["user.name"].startswith("hmac-sha256:")
    assert minimised["events"][0]["user.name"] == minimised["user.name"]
    assert "event.original" in alert["events"][0], "the stored alert must keep everything"
    other_key = Minimiser(settings, b"another-key").apply(alert)
    assert other_key["user.name"] != minimised["user.name"]
    kept = Minimiser(MinimiseConfig(keep_original=True), None).apply(alert)
    assert kept["events"][0]["event.original"] == alert["events"][0]["event.original"]
    with pytest.raises(ConfigError, match="hash_key_env"):
        Minimiser(MinimiseConfig(hash_fields=["user.name"]), None)
    # An incident lists its users: each is hashed, and no name is left anywhere.
    incident = by_title(sample_incidents, "SSH Brute Force Followed By A Successful Login")
    assert len(incident["user.name"]) > 1
    hidden = Minimiser(settings, b"province-key").apply(incident)
    assert all(value.startswith("hmac-sha256:") for value in hidden["user.name"])
    remaining = set(string_values(hidden))
    assert not remaining & {*incident["user.name"], *incident["source.ip"]}
    assert "host.name" not in hidden


def test_rate_limiter_paces_instead_of_dropping() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(60, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        limiter.wait()
    # One per second: the first goes at once, the next four each wait a second.
    assert slept == pytest.approx([1.0] * 4)
    unlimited = RateLimiter(0, clock=lambda: now[0], sleep=sleep)
    unlimited.wait()
    assert len(slept) == 4


def test_delivery_retries_transient_failures_then_succeeds() -> None:
    attempts = []

    def send() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise TransientError("503")
        return "ok"

    breaker = CircuitBreaker(failures=5, reset_secs=30, clock=lambda: 0)
    backoff = Backoff(1, 60, random.Random(1))
    retries: list[TransientError] = []
    result = deliver(
        send, breaker, backoff, 600, lambda: False, retries.append, sleep=lambda _: None
    )
    assert result == "ok"
    assert len(retries) == 2
    assert breaker.state == "closed"


def test_delivery_gives_permanent_errors_back_at_once() -> None:
    def send() -> str:
        raise PermanentError("HTTP 400")

    breaker = CircuitBreaker(5, 30)
    with pytest.raises(PermanentError):
        deliver(send, breaker, Backoff(1, 2, random.Random()), 60, lambda: False, print)


def test_circuit_breaker_opens_then_lets_one_trial_through() -> None:
    now = [0.0]
    breaker = CircuitBreaker(failures=3, reset_secs=30, clock=lambda: now[0])

    def failing() -> str:
        raise TransientError("down")

    with pytest.raises(DestinationUnavailable):
        deliver(
            failing,
            breaker,
            Backoff(0, 0, random.Random()),
            1e9,
            lambda: False,
            lambda _: None,
            clock=lambda: now[0],
            sleep=lambda _: None,
        )
    assert breaker.state == "open" and breaker.failures == 3
    calls = []
    with pytest.raises(DestinationUnavailable, match="circuit open"):
        deliver(
            lambda: calls.append(1),
            breaker,
            Backoff(0, 0, random.Random()),
            60,
            lambda: False,
            lambda _: None,
        )
    assert calls == []
    now[0] = 31
    assert breaker.state == "half-open"
    deliver(lambda: "ok", breaker, Backoff(0, 0, random.Random()), 60, lambda: False, print)
    assert breaker.state == "closed"


def test_backoff_is_jittered_and_capped() -> None:
    backoff = Backoff(1, 8, random.Random(7))
    delays = [backoff.delay(attempt) for attempt in range(10)]
    assert all(0 <= delay <= 8 for delay in delays)
    assert len(set(delays)) == len(delays)


def test_cef_line_escapes_and_parses_back(sample_incidents: list[dict]) -> None:
    incident = dict(by_title(sample_incidents, "Path Traversal Attempt In Request"))
    incident["incident.title"] = "Pipe | and back\\slash"
    incident["rule.description"] = "a=b\nnext line"
    line = cef_line(incident)
    assert "Pipe \\| and back\\\\slash" in line
    assert "msg=a\\=b\\nnext line" in line
    frame = syslog_frame(incident, "soc01")
    length, _, message = frame.partition(b" ")
    assert int(length) == len(message)
    event, parser = parse_detected(message.decode(), ParseContext(agency_id="national"))
    assert parser.name == "syslog5424"
    assert event["cef.name"] == incident["incident.title"]
    assert event["cef.extensions.externalId"] == incident["incident.id"]
    assert event["cef.extensions.cnt"] == str(incident["incident.alert_count"])
    assert event["source.ip"] == incident["source.ip"][0]


def test_stix_bundle_is_valid_and_identical_on_resend(sample_incidents: list[dict]) -> None:
    incident = by_title(sample_incidents, "SSH Brute Force Followed By A Successful Login")
    first = incident_bundle(incident, "province-soc", "Provincial SOC")
    again = incident_bundle(incident, "province-soc", "Provincial SOC")
    assert first.serialize() == again.serialize()
    parsed = stix2.parse(first.serialize(), allow_custom=False)
    kinds = [item.type for item in parsed.objects]
    assert kinds.count("sighting") == 1 and "observed-data" in kinds and "indicator" in kinds
    sighting = next(item for item in parsed.objects if item.type == "sighting")
    assert sighting.count == incident["incident.alert_count"] > 20
    assert sighting.external_references[0].external_id == incident["incident.id"]
    pattern = next(item for item in parsed.objects if item.type == "attack-pattern")
    assert {"source_name": "mitre-attack", "external_id": "T1110.001"} in [
        {"source_name": ref.source_name, "external_id": ref.external_id}
        for ref in pattern.external_references
    ]
    users = [item.user_id for item in parsed.objects if item.type == "user-account"]
    assert sorted(users) == sorted(incident["user.name"])
    # A level rise is a newer version of the same objects, never the same version changed.
    lower = incident_bundle({**incident, "incident.level": "high"}, "province-soc", "P")
    earlier = next(item for item in lower.objects if item.type == "sighting")
    assert earlier.id == sighting.id and earlier.modified < sighting.modified
    other = by_title(sample_incidents, "Account Created With UID 0")
    assert incident_bundle(other, "province-soc", "P").objects[-1].id != sighting.id


def test_ledger_records_are_keyed_by_destination_incident_level_and_outcome(
    sample_incidents: list[dict],
) -> None:
    incident = by_title(sample_incidents, "Account Created With UID 0")
    record = ledger_record("national", "taxii", incident, "acknowledged", receipt="ok", now=0)
    assert record["forward.id"] == ledger_id(
        "national", incident["incident.id"], "critical", "acknowledged"
    )
    assert record["@timestamp"] == "1970-01-01T00:00:00.000Z"
    assert record["incident.alert_ids"] == incident["incident.alert_ids"]
    assert record["organization.id"] == "so-tttt"
    again = ledger_record("national", "taxii", incident, "acknowledged", now=99)
    assert again["forward.id"] == record["forward.id"]  # a replay writes nothing twice
    other_ids = {
        ledger_record("national", "taxii", incident, "refused")["forward.id"],
        ledger_record("syslog", "syslog", incident, "acknowledged")["forward.id"],
        ledger_record("national", "taxii", {**incident, "incident.level": "high"}, "acknowledged")[
            "forward.id"
        ],
    }
    assert record["forward.id"] not in other_ids and len(other_ids) == 3
    with pytest.raises(ValueError, match="unknown forwarding outcome"):
        ledger_record("national", "taxii", incident, "lost")


def test_start_positions_are_named_or_times_with_a_zone() -> None:
    assert str(parse_start("latest")) == "latest" and parse_start("earliest").moment_ms is None
    moment = parse_start("2026-03-01T07:00:00+07:00")
    assert moment.moment_ms == 1772323200000 and str(moment) == "2026-03-01T00:00:00+00:00"
    for wrong in ("yesterday", "2026-03-01T00:00:00", ""):
        with pytest.raises(ConfigError, match="earliest, latest or an ISO 8601 time"):
            parse_start(wrong)


def test_destination_sections_are_checked_for_their_own_type(tmp_path: Path) -> None:
    def load(destination: dict) -> Config:
        path = tmp_path / "socpipe.yml"
        path.write_text(yaml.safe_dump({"forwarding": {"destinations": [destination]}}))
        return load_config(path)

    with pytest.raises(ConfigError, match=r"destinations\[0\]\.type: must be one of kafka, syslog"):
        load({"name": "x", "type": "smtp"})
    with pytest.raises(ConfigError, match=r"destinations\[0\]: missing key\(s\): url, collection"):
        load({"name": "x", "type": "taxii"})
    # A key of another destination type is a typo here, not a setting.
    with pytest.raises(ConfigError, match=r"destinations\[0\]: unknown key\(s\): url"):
        load({"name": "x", "type": "syslog", "address": "h:1", "url": "https://x/"})
    loaded = load(
        {"name": "x", "type": "syslog", "address": "h:1", "policy": {"min_level": "high"}}
    )
    [syslog] = loaded.forwarding.destinations
    assert isinstance(syslog, SyslogDestinationConfig) and syslog.policy.min_level == "high"
    assert load_config_document(tmp_path, config_document(loaded)) == loaded


def load_config_document(folder: Path, document: dict) -> Config:
    path = folder / "again.yml"
    path.write_text(yaml.safe_dump(document))
    return load_config(path)


def test_destination_names_and_addresses_are_checked_when_built() -> None:
    forwarding = ForwardingConfig()
    with pytest.raises(ConfigError, match="letters, digits"):
        build_destination(WebhookDestinationConfig(name="a/b", url="x"), forwarding)
    with pytest.raises(ConfigError, match="host:port"):
        build_destination(SyslogDestinationConfig(name="x", address="nohost"), forwarding)


def test_status_round_trip(tmp_path: Path) -> None:
    from socpipe.forwarding.status import DestinationStatus, read_status, write_status

    status = DestinationStatus("national", "taxii")
    status.failed("HTTP 503")
    status.succeeded()
    write_status(str(tmp_path), status)
    again = read_status(str(tmp_path), "national")
    assert again == status
    assert read_status(str(tmp_path), "missing") is None


def test_unreachable_kafka_destination_is_an_outage_not_a_start_failure() -> None:
    settings = KafkaDestinationConfig(
        name="remote",
        topic="alerts",
        bootstrap_servers=["127.0.0.1:1"],
        security_protocol="PLAINTEXT",
        timeout_secs=1,
    )
    destination = build_destination(settings, ForwardingConfig())
    with pytest.raises(TransientError, match="kafka"):
        destination.send({"incident.id": "i1", "incident.level": "high"})
    destination.close()


def test_forward_stages_refuse_duplicate_destination_names() -> None:
    twin = WebhookDestinationConfig(name="national", url="https://127.0.0.1:1/")
    config = Config(forwarding=ForwardingConfig(destinations=[twin, twin]))
    with pytest.raises(ConfigError, match="duplicate name"):
        build_forward_stages(config, None, threading.Event())  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"no forwarding\.destinations"):
        build_forward_stages(Config(), None, threading.Event())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "settings",
    [
        TaxiiDestinationConfig(name="t", url="http://127.0.0.1:1/api1/", collection="c"),
        SyslogDestinationConfig(name="s", address="127.0.0.1:1"),
    ],
)
def test_an_incident_that_cannot_be_encoded_is_refused_not_retried(
    settings: DestinationBase,
) -> None:
    destination = build_destination(settings, ForwardingConfig())
    with pytest.raises(UnsendableError, match="cannot express the incident"):
        destination.send({"incident.id": "broken", "incident.first_seen": "not a time"})
    destination.close()

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
    deliver,
)
from socpipe.forwarding.destinations.base import build_destination
from socpipe.forwarding.policy import Minimiser, RateLimiter, Selection
from socpipe.forwarding.stix import alert_bundle


def string_values(document: object) -> list[str]:
    if isinstance(document, dict):
        return [text for value in document.values() for text in string_values(value)]
    if isinstance(document, list):
        return [text for value in document for text in string_values(value)]
    return [document] if isinstance(document, str) else []


def by_rule(alerts: list[dict], name: str) -> dict:
    return next(alert for alert in alerts if alert["rule.name"] == name)


def test_selection_by_level_rule_tag_and_agency(sample_alerts: list[dict]) -> None:
    critical = by_rule(sample_alerts, "Account Created With UID 0")
    low = by_rule(sample_alerts, "SSH Login Attempt For Unknown User")
    assert Selection(ForwardPolicyConfig(min_level="high")).refusal(critical) is None
    assert Selection(ForwardPolicyConfig(min_level="high")).refusal(low) == "level below high"
    only = ForwardPolicyConfig(include_rules=[critical["rule.id"]])
    assert Selection(only).refusal(low) == "rule not included"
    assert Selection(ForwardPolicyConfig(exclude_tags=["attack.t1136.001"])).refusal(critical)
    assert Selection(ForwardPolicyConfig(include_agencies=["so-yte"])).refusal(critical)
    assert Selection(ForwardPolicyConfig(exclude_agencies=["so-tttt"])).refusal(critical)
    with pytest.raises(ConfigError, match="min_level"):
        Selection(ForwardPolicyConfig(min_level="urgent"))


def test_minimisation_drops_and_hashes_everywhere_and_keeps_the_original(
    sample_alerts: list[dict],
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


def test_cef_line_escapes_and_parses_back(sample_alerts: list[dict]) -> None:
    alert = dict(by_rule(sample_alerts, "Path Traversal Attempt In Request"))
    alert["rule.name"] = "Pipe | and back\\slash"
    alert["rule.description"] = "a=b\nnext line"
    line = cef_line(alert)
    assert "Pipe \\| and back\\\\slash" in line
    assert "msg=a\\=b\\nnext line" in line
    frame = syslog_frame(alert, "soc01")
    length, _, message = frame.partition(b" ")
    assert int(length) == len(message)
    event, parser = parse_detected(message.decode(), ParseContext(agency_id="national"))
    assert parser.name == "syslog5424"
    assert event["cef.name"] == alert["rule.name"]
    assert event["cef.extensions.externalId"] == alert["alert.id"]
    assert event["source.ip"] == alert["source.ip"]


def test_stix_bundle_is_valid_and_identical_on_resend(sample_alerts: list[dict]) -> None:
    alert = by_rule(sample_alerts, "SSH Brute Force From One Source")
    first = alert_bundle(alert, "province-soc", "Provincial SOC")
    again = alert_bundle(alert, "province-soc", "Provincial SOC")
    assert first.serialize() == again.serialize()
    parsed = stix2.parse(first.serialize(), allow_custom=False)
    kinds = [item.type for item in parsed.objects]
    assert kinds.count("sighting") == 1 and "observed-data" in kinds and "indicator" in kinds
    sighting = next(item for item in parsed.objects if item.type == "sighting")
    assert sighting.count == 10
    pattern = next(item for item in parsed.objects if item.type == "attack-pattern")
    assert {"source_name": "mitre-attack", "external_id": "T1110.001"} in [
        {"source_name": ref.source_name, "external_id": ref.external_id}
        for ref in pattern.external_references
    ]
    other = by_rule(sample_alerts, "Password Spraying From One Source")
    assert alert_bundle(other, "province-soc", "P").objects[-2].id != sighting.id


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
        destination.send({"alert.id": "a1"})
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
def test_an_alert_that_cannot_be_encoded_is_refused_not_retried(
    settings: DestinationBase,
) -> None:
    destination = build_destination(settings, ForwardingConfig())
    with pytest.raises(PermanentError, match="cannot express the alert"):
        destination.send({"alert.id": "broken", "alert.first_seen": "not a time"})
    destination.close()

"""The streaming pipeline end to end on the real Kafka and Elasticsearch."""

from __future__ import annotations

import json
import os
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from socpipe.collectors.follow import FileFollower
from socpipe.collectors.parsers import ParseContext, parse_detected
from socpipe.collectors.publisher import EventPublisher
from socpipe.core.config import Config
from socpipe.core.kafka_clients import make_producer
from socpipe.daemon import runner
from socpipe.detectors.anomaly.training import train_log_pattern
from tests.integration.conftest import read_topic, running_collectors, search, wait_for

CONTEXT = ParseContext(
    agency_id="so-tttt", agency_name="So TT&TT", reference_time=datetime(2026, 3, 10, tzinfo=UTC)
)
ATTACK_LINES = [
    "<38>Mar  3 10:05:44 web01 sshd[2301]: Accepted password for root from 203.0.113.50 port 51199 ssh2",
    "<38>Mar  3 10:06:00 web02 useradd[3301]: new user: name=sysbackup, UID=0, GID=0, home=/root, shell=/bin/bash",
    "<38>Mar  3 10:06:30 web02 sshd[2302]: Accepted publickey for deploy from 10.20.1.5 port 40022 ssh2",
]
WEB_LINES = [
    '203.0.113.77 - - [03/Mar/2026:10:15:32 +0700] "GET /download.php?file=..%2F..%2Fetc%2Fpasswd HTTP/1.1" 200 1832 "-" "curl/8"',
    '10.20.5.14 - - [03/Mar/2026:10:15:33 +0700] "GET /tintuc/chitiet.php?id=15 HTTP/1.1" 200 5120 "-" "Mozilla/5.0"',
]


@pytest.fixture
def daemon(config: Config) -> Iterator[None]:
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(config, ["detect", "index"], stop))
    thread.start()
    yield
    stop.set()
    thread.join(timeout=60)
    assert not thread.is_alive(), "the daemon did not stop within 60 s of being asked"


def test_syslog_and_files_flow_to_events_and_alerts(
    config: Config, es: Elasticsearch, daemon: None, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    with running_collectors(config, tmp_path, str(logs / "*.log"), CONTEXT) as collectors:
        with socket.create_connection(collectors.address) as connection:
            connection.sendall(("\n".join(ATTACK_LINES[:2]) + "\n").encode())
            framed = ATTACK_LINES[2].encode()
            connection.sendall(str(len(framed)).encode() + b" " + framed)  # octet counting
        (logs / "access.log").write_text("\n".join(WEB_LINES) + "\n")
        events = wait_for(
            lambda: (
                (found := search(es, f"{config.elasticsearch.events_index_prefix}*"))
                and len(found) >= 5
                and found
            ),
            what="5 events in Elasticsearch",
        )
        alerts = wait_for(
            lambda: (
                (found := search(es, config.elasticsearch.alerts_index))
                and len(found) >= 4
                and found
            ),
            what="4 alerts",
        )

    assert len(events) == 5
    assert {event["organization.id"] for event in events} == {"so-tttt"}
    assert Counter(event["event.dataset"] for event in events) == {
        "system.auth": 3,
        "web.access": 2,
    }
    titles = Counter(alert["rule.name"] for alert in alerts)
    assert titles == {
        "SSH Login As Root Accepted": 1,
        "Account Created With UID 0": 1,
        "Local User Account Created": 1,
        "Path Traversal Attempt In Request": 1,
    }
    root_login = next(
        alert for alert in alerts if alert["rule.name"] == "SSH Login As Root Accepted"
    )
    assert root_login["source.ip"] == "203.0.113.50"
    assert root_login["host.name"] == "web01"
    assert root_login["organization.id"] == "so-tttt"
    assert root_login["alert.status"] == "new"
    assert root_login["threat.technique.id"] == ["T1078.003"]


def event_after_poison() -> dict:
    event, _ = parse_detected(
        "Mar  3 10:09:00 web01 sshd[1]: Accepted password for root from 203.0.113.9 port 2 ssh2",
        CONTEXT,
    )
    event["event.id"] = "after-poison"
    return event


def test_undecodable_records_are_dead_lettered_with_a_reason(
    config: Config, es: Elasticsearch, daemon: None
) -> None:
    producer = make_producer(config.kafka)
    producer.send(config.kafka.topics.events, value=b"\xff\xfe not json")
    producer.send(config.kafka.topics.events, value=b"[1, 2, 3]")
    producer.send(config.kafka.topics.events, value=b'{"no": "timestamp or id"}')
    # A root login without a timestamp: a rule matches, but no alert can be dated.
    undated = {
        "event.action": "ssh_login",
        "event.outcome": "success",
        "user.name": "root",
        "event.module": "system",
        "event.dataset": "system.auth",
        "process.name": "sshd",
    }
    producer.send(config.kafka.topics.events, value=json.dumps(undated).encode())
    producer.send(config.kafka.topics.events, value=json.dumps(event_after_poison()).encode())
    producer.flush()
    producer.close()
    # Each stage reports what it could not handle: detect the two non-objects and the undated
    # match, index all four bad records; the good record after them still goes through.
    dead = read_topic(config, config.kafka.topics.deadletter, expected=7, timeout=120)
    reasons = Counter((record["stage"], record["reason"].split(":")[0]) for record in dead)
    assert reasons == {
        ("detect", "not JSON"): 1,
        ("detect", "not a JSON object but list"): 1,
        ("detect", "detection failed"): 1,
        ("index", "cannot index"): 4,
    }
    assert all(record["topic"] == config.kafka.topics.events for record in dead)
    assert any(record["record"].startswith("\\xff\\xfe") for record in dead)
    wait_for(
        lambda: any(
            alert["events"][0]["event.id"] == "after-poison"
            for alert in search(es, config.elasticsearch.alerts_index)
        ),
        what="the alert of the record after the bad ones",
    )


SSHD_LINE = (
    "Mar  3 10:00:{:02d} web01 sshd[1]: Failed password for user{} from 10.0.0.1 port 22 ssh2"
)


def sshd_lines(numbers: range) -> str:
    return "".join(SSHD_LINE.format(i % 60, i) + "\n" for i in numbers)


def published_users(config: Config, expected: int) -> list[str]:
    users = [
        record["user.name"]
        for record in read_topic(config, config.kafka.topics.events, expected=expected)
    ]
    return sorted(users, key=lambda name: int(name[4:]))


def test_file_follower_resumes_and_follows_rotation_without_loss_or_repeats(
    config: Config, tmp_path: Path
) -> None:
    path, state = tmp_path / "auth.log", tmp_path / "state.json"

    def follower() -> FileFollower:
        return FileFollower([str(path)], state, EventPublisher(config.kafka, "file"), CONTEXT)

    path.write_text(sshd_lines(range(100)))
    first = follower()
    assert first.poll_once() == 100
    # A restart: the new follower starts where the last confirmed position was saved.
    with path.open("a") as handle:
        handle.write(sshd_lines(range(100, 150)))
    second = follower()
    assert second.poll_once() == 50
    # Rotation by rename: lines written to the old file before the switch are still read.
    with path.open("a") as handle:
        handle.write(sshd_lines(range(150, 151)))
    os.rename(path, tmp_path / "auth.log.1")
    path.write_text(sshd_lines(range(151, 160)))
    assert second.poll_once() + second.poll_once() == 10
    # Rotation by truncation.
    path.write_text(sshd_lines(range(160, 161)))
    assert second.poll_once() == 1
    assert published_users(config, expected=161) == [f"user{i}" for i in range(161)]


def test_file_follower_finishes_a_file_rotated_while_it_was_stopped(
    config: Config, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path, state = tmp_path / "auth.log", tmp_path / "state.json"

    def follower() -> FileFollower:
        return FileFollower([str(path)], state, EventPublisher(config.kafka, "file"), CONTEXT)

    path.write_text(sshd_lines(range(100)))
    assert follower().poll_once() == 100
    # Stopped: lines still go to the old file, then logrotate renames it and a new one starts.
    with path.open("a") as handle:
        handle.write(sshd_lines(range(100, 130)))
    os.rename(path, tmp_path / "auth.log.1")
    path.write_text(sshd_lines(range(130, 140)))
    restarted = follower()
    assert restarted.poll_once() + restarted.poll_once() == 40
    assert "reading the rest of the old file" in caplog.text
    assert published_users(config, expected=140) == [f"user{i}" for i in range(140)]


def test_file_follower_does_not_take_a_recycled_inode_for_the_rotated_file(
    config: Config, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A saved position whose inode now belongs to another file (the old one was deleted and
    its inode reused): the first bytes differ, so nothing is resumed from the wrong file."""
    path, state = tmp_path / "auth.log", tmp_path / "state.json"
    stranger = tmp_path / "other.log"
    stranger.write_text(sshd_lines(range(500, 520)))
    saved = {"inode": stranger.stat().st_ino, "offset": 50, "head": "0" * 64, "head_bytes": 50}
    state.write_text(json.dumps({str(path): saved}))
    path.write_text(sshd_lines(range(10)))
    assert (
        FileFollower([str(path)], state, EventPublisher(config.kafka, "file"), CONTEXT).poll_once()
        == 10
    )
    assert "the old file is gone" in caplog.text
    assert published_users(config, expected=10) == [f"user{i}" for i in range(10)]


def test_detect_stage_raises_correlation_alerts(
    config: Config, es: Elasticsearch, daemon: None
) -> None:
    lines = [
        f"Mar  3 11:00:{second:02d} web01 sshd[2400]: Failed password for root from"
        f" 203.0.113.66 port {41000 + second} ssh2"
        for second in range(12)
    ]
    lines.append(
        "Mar  3 11:04:00 web01 sshd[2401]: Accepted password for root from 203.0.113.66 port 42000 ssh2"
    )
    publisher = EventPublisher(config.kafka, "test")
    for number, line in enumerate(lines):
        event, _ = parse_detected(line, CONTEXT)
        event["event.id"] = f"correlation-test-{number}"
        publisher.publish(event)
    publisher.close()
    wanted = {"SSH Brute Force From One Source", "SSH Brute Force Followed By A Successful Login"}
    alerts = wait_for(
        lambda: (
            (found := search(es, config.elasticsearch.alerts_index))
            and wanted <= {alert["rule.name"] for alert in found}
            and found
        ),
        timeout=120,
        what="correlation alerts in Elasticsearch",
    )
    titles = Counter(alert["rule.name"] for alert in alerts)
    # One brute force (the first ten failures; two left over), then the login completes it.
    assert titles["SSH Brute Force From One Source"] == 1
    assert titles["SSH Brute Force Followed By A Successful Login"] == 1
    # The failures feed correlations only (generate: false): no alert per failed login.
    assert titles["SSH Login Failed"] == 0
    brute_force = next(a for a in alerts if a["rule.name"] == "SSH Brute Force From One Source")
    assert brute_force["correlation.group"] == {"source.ip": "203.0.113.66", "host.name": "web01"}
    assert brute_force["correlation.event_ids"] == [f"correlation-test-{n}" for n in range(10)]


def test_detect_stage_raises_anomaly_alerts_from_a_configured_model(
    config: Config, es: Elasticsearch, tmp_path: Path
) -> None:
    def sshd(hour: int, minute: int, text: str) -> dict:
        line = f"Mar  3 {hour:02d}:{minute:02d}:00 app01 sshd[{minute + 100}]: {text}"
        event, _ = parse_detected(line, CONTEXT)
        event["event.id"] = f"anomaly-test-{hour}-{minute}-{len(text)}"
        return event

    usual = "Accepted publickey for deploy from 10.20.0.9 port 50022 ssh2"
    training = [sshd(hour, minute, usual) for hour in range(8) for minute in range(0, 60, 10)]
    model = tmp_path / "model"
    train_log_pattern(training, model, "app-logs", "host.name", 3600, ["test"])
    stages = replace(
        config.stages, anomaly_models=[str(model)], trusted_models_dir=str(model.parent)
    )
    configured = replace(config, stages=stages)
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(configured, ["detect", "index"], stop))
    thread.start()
    try:
        publisher = EventPublisher(config.kafka, "test")
        for event in (
            sshd(9, 0, usual),
            sshd(9, 5, "error: kex_exchange_identification: Connection closed by remote host"),
            sshd(10, 0, usual),  # the next window: the 09:00 session closes and is scored
        ):
            publisher.publish(event)
        publisher.close()
        alerts = wait_for(
            lambda: [
                alert
                for alert in search(es, config.elasticsearch.alerts_index)
                if alert["rule.id"] == "anomaly-log_pattern-app-logs"
            ],
            timeout=120,
            what="an anomaly alert in Elasticsearch",
        )
    finally:
        stop.set()
        thread.join(timeout=60)
    [alert] = alerts
    assert alert["host.name"] == "app01"
    assert alert["alert.first_seen"].startswith("2026-03-03T09:00")
    assert any("<unseen>" in step for step in alert["anomaly.unseen_steps"])

"""`socpipe forward test DEST` and `socpipe forward status`: what an operator runs first
when the national center says nothing arrived."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from typing import TextIO

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from socpipe.core.config import Config
from socpipe.forwarding.delivery import (
    Backoff,
    CircuitBreaker,
    DestinationUnavailable,
    PermanentError,
    TransientError,
)
from socpipe.forwarding.delivery import deliver as deliver_with_retries
from socpipe.forwarding.destinations.base import build_destination
from socpipe.forwarding.policy import Minimiser, Selection
from socpipe.forwarding.stage import hash_key, synthetic_alert
from socpipe.forwarding.status import read_status

TEST_BUDGET_SECS = 15.0


def _when(moment: float | None) -> str:
    if moment is None:
        return "never"
    stamp = datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{stamp} ({time.time() - moment:,.0f}s ago)"


def forward_test(config: Config, name: str, out: TextIO) -> bool:
    """Send one synthetic alert to ``name``; report exactly what happened."""
    settings = next((d for d in config.forwarding.destinations if d.name == name), None)
    if settings is None:
        known = ", ".join(d.name for d in config.forwarding.destinations) or "none configured"
        print(f"no destination named {name!r} (destinations: {known})", file=out)
        return False
    alert = synthetic_alert(config.forwarding.province_id)
    refusal = Selection(settings.policy).refusal(alert)
    print(f"destination {name} ({settings.type} {settings.target})", file=out)
    if refusal:
        print(f"  policy: this alert would normally be skipped ({refusal}); sent anyway", file=out)
    payload = Minimiser(settings.minimise, hash_key(config)).apply(alert)
    destination = build_destination(settings, config.forwarding)
    started = time.monotonic()

    def retrying(error: TransientError) -> None:
        print(f"  attempt failed, retrying: {error}", file=out)

    try:
        receipt = deliver_with_retries(
            lambda: destination.send(payload),
            CircuitBreaker(failures=1_000, reset_secs=0),
            Backoff(0.5, 4.0, random.Random()),
            TEST_BUDGET_SECS,
            lambda: False,
            retrying,
        )
    except PermanentError as error:
        print(f"  REFUSED (permanent; the stage would dead-letter it): {error}", file=out)
        return False
    except DestinationUnavailable as error:
        print(f"  UNREACHABLE after {TEST_BUDGET_SECS:.0f}s of retries: {error}", file=out)
        return False
    finally:
        destination.close()
    elapsed = time.monotonic() - started
    print(f"  delivered alert {alert['alert.id']} in {elapsed:.2f}s: {receipt}", file=out)
    return True


def forward_status(config: Config, out: TextIO) -> bool:
    destinations = config.forwarding.destinations
    if not destinations:
        print("no forwarding.destinations configured", file=out)
        return False
    lags = _lags(config)
    header = f"{'destination':<20} {'type':<8} {'lag':>8}  {'last success':<34} last failure"
    print(header, file=out)
    for settings in destinations:
        status = read_status(config.forwarding.status_dir, settings.name)
        lag = lags.get(settings.name)
        line = (
            f"{settings.name:<20} {settings.type:<8} {lag if lag is not None else '?':>8}  "
            f"{_when(status.last_success if status else None):<34} "
            f"{_when(status.last_failure if status else None)}"
        )
        print(line, file=out)
        if status and status.breaker != "closed":
            print(f"{'':<20} circuit breaker {status.breaker}", file=out)
        if status and status.last_error and (status.last_failure or 0) > (status.last_success or 0):
            print(f"{'':<20} last error: {status.last_error}", file=out)
        if status is None:
            print(f"{'':<20} no status yet (has the forward stage run?)", file=out)
    return True


def _lags(config: Config) -> dict[str, int]:
    """Alerts each destination's consumer group has not committed yet."""
    lags: dict[str, int] = {}
    topic = config.kafka.topics.alerts
    for settings in config.forwarding.destinations:
        group = f"{config.forwarding.group_prefix}{settings.name}"
        try:
            consumer = KafkaConsumer(
                group_id=group, enable_auto_commit=False, **config.kafka.client_options()
            )
        except KafkaError:
            return lags
        try:
            partitions = [
                TopicPartition(topic, number)
                for number in sorted(consumer.partitions_for_topic(topic) or ())
            ]
            ends = consumer.end_offsets(partitions)
            lags[settings.name] = sum(
                ends[partition] - (consumer.committed(partition) or 0) for partition in partitions
            )
        finally:
            consumer.close(autocommit=False)
    return lags

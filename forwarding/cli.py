"""`socpipe forward test DEST`, `socpipe forward status` and `socpipe forward start-from`:
what an operator runs first when the national center says nothing arrived, and how a
destination's start is moved on purpose."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from typing import TextIO

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError, NoError
from kafka.structs import OffsetAndMetadata

from socpipe.core.config import Config, DestinationBase
from socpipe.core.errors import UsageError
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
from socpipe.forwarding.stage import hash_key, synthetic_incident
from socpipe.forwarding.start import StartPosition, commit_metadata, parse_start, start_offsets
from socpipe.forwarding.status import read_status

TEST_BUDGET_SECS = 15.0


def _when(moment: float | None) -> str:
    if moment is None:
        return "never"
    stamp = datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{stamp} ({time.time() - moment:,.0f}s ago)"


def _destination(config: Config, name: str) -> DestinationBase | None:
    return next((d for d in config.forwarding.destinations if d.name == name), None)


def _unknown(config: Config, name: str) -> str:
    known = ", ".join(d.name for d in config.forwarding.destinations) or "none configured"
    return f"no destination named {name!r} (destinations: {known})"


def forward_test(config: Config, name: str, out: TextIO) -> bool:
    """Send one synthetic incident to ``name``; report exactly what happened."""
    settings = _destination(config, name)
    if settings is None:
        print(_unknown(config, name), file=out)
        return False
    incident = synthetic_incident(config.forwarding.province_id)
    refusal = Selection(settings.policy).refusal(incident)
    print(f"destination {name} ({settings.type} {settings.target})", file=out)
    if refusal:
        print(
            f"  policy: this incident would normally be skipped ({refusal}); sent anyway",
            file=out,
        )
    payload = Minimiser(settings.minimise, hash_key(config)).apply(incident)
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
    print(f"  delivered incident {incident['incident.id']} in {elapsed:.2f}s: {receipt}", file=out)
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
    """Incident updates each destination's consumer group has not committed yet."""
    lags: dict[str, int] = {}
    topic = config.kafka.topics.incidents
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


def start_from(config: Config, name: str, position_text: str, apply: bool, out: TextIO) -> bool:
    """Move destination ``name``'s group on the incidents topic to ``position_text``
    (earliest, latest or a time). Shows per partition where it is and where it would go, and
    how many incident updates that sends (again); changes nothing unless ``apply``. The
    destination's forward stage must be stopped (Kafka refuses commits to an active group)."""
    settings = _destination(config, name)
    if settings is None:
        raise UsageError(_unknown(config, name))
    position = parse_start(position_text, "position")
    group = f"{config.forwarding.group_prefix}{settings.name}"
    admin = KafkaAdminClient(**config.kafka.client_options())
    try:
        description = admin.describe_groups([group]).get(group) or {}
        members = len(description.get("members") or [])
        return _start_from(config, settings, group, position, admin, members, apply, out)
    finally:
        admin.close()


def _start_from(
    config: Config,
    settings: DestinationBase,
    group: str,
    position: StartPosition,
    admin: KafkaAdminClient,
    members: int,
    apply: bool,
    out: TextIO,
) -> bool:
    name = settings.name
    topic = config.kafka.topics.incidents
    consumer = KafkaConsumer(
        group_id=group, enable_auto_commit=False, **config.kafka.client_options()
    )
    try:
        partitions = [
            TopicPartition(topic, number)
            for number in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            raise UsageError(f"topic {topic} not found (run `socpipe setup`)")
        targets = start_offsets(consumer, partitions, position)
        ends = consumer.end_offsets(partitions)
        print(f"destination {name} (group {group}), topic {topic}: to {position}", file=out)
        resent = 0
        for partition in partitions:
            committed = consumer.committed(partition)
            target = targets[partition]
            if committed is not None and target < committed:
                again = committed - target
                resent += again
                note = f"{again:,} update(s) forwarded again"
            else:
                note = f"{ends[partition] - target:,} update(s) still to forward"
                if committed is not None and target > committed:
                    note += f", {target - committed:,} never forwarded"
            shown = "none" if committed is None else f"{committed:,}"
            print(
                f"  partition {partition.partition}: committed {shown} -> {target:,}  ({note})",
                file=out,
            )
        if not apply:
            print("  nothing changed: add --yes to move the group there", file=out)
            return True
        if members:
            print(
                f"  REFUSED: the group has {members} active member(s); stop the forward stage"
                f" of {name} first",
                file=out,
            )
            return False
        metadata = commit_metadata(position)
        errors = admin.alter_group_offsets(
            group, {p: OffsetAndMetadata(targets[p], metadata, -1) for p in partitions}
        )
        failed = {p.partition: e.__name__ for p, e in errors.items() if e is not NoError}
        if failed:
            print(f"  REFUSED by Kafka: {failed}", file=out)
            return False
        print(f"  moved; {resent:,} update(s) will be forwarded again", file=out)
        return True
    finally:
        consumer.close(autocommit=False)

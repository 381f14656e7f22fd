"""``socpipe setup``: create the Kafka topics and install the Elasticsearch templates."""

from __future__ import annotations

import argparse

from socpipe.commands.common import add_config_argument, load_config
from socpipe.core.errors import DependencyUnavailable, UsageError

NAME = "setup"
HELP = "create Kafka topics and Elasticsearch templates (safe to run again)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument(
        "--agency",
        action="append",
        default=[],
        metavar="ID",
        help="also create this agency's events topic (repeatable; with per-agency topics)",
    )


def run(args: argparse.Namespace) -> int:
    from socpipe.core.kafka_clients import ensure_topics, pipeline_topics

    config = load_config(args)
    if args.agency and not config.kafka.per_agency:
        raise UsageError("--agency: kafka.event_topics is single: there are no agency topics")
    # Agency ids become topic names: check them all before creating anything.
    pipeline_topics(config.kafka, args.agency)

    from elastic_transport import TransportError
    from elasticsearch import ApiError
    from kafka.errors import KafkaError

    from socpipe.sinks.elasticsearch import connect, install_templates

    try:
        created = ensure_topics(config.kafka, args.agency)
    except KafkaError as error:
        raise DependencyUnavailable(f"kafka: {error} (setup needs an administrator)") from None
    print(f"kafka topics: {', '.join(created) if created else 'all present'}")
    try:
        templates = install_templates(connect(config.elasticsearch), config.elasticsearch)
    except ApiError as error:
        body = error.body if isinstance(error.body, dict) else {}
        detail = (
            body.get("error", {}).get("reason") if isinstance(body.get("error"), dict) else None
        )
        reason = f"HTTP {error.meta.status}: {detail or error.message}"[:500]
        raise DependencyUnavailable(f"elasticsearch refused: {reason}") from None
    except TransportError as error:
        raise DependencyUnavailable(f"elasticsearch unreachable: {error}") from None
    settings = config.elasticsearch
    indices = ", ".join(
        (settings.alerts_index, settings.incidents_index, settings.forwarding_index)
    )
    print(f"elasticsearch templates: {', '.join(templates)}; indices: {indices}")
    return 0

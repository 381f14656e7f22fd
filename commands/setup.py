"""``socpipe setup``: create the Kafka topics and install the Elasticsearch templates."""

from __future__ import annotations

import argparse

from socpipe.commands.common import add_config_argument, load_config

NAME = "setup"
HELP = "create Kafka topics and Elasticsearch templates (safe to run again)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)


def run(args: argparse.Namespace) -> int:
    from socpipe.core.kafka_clients import ensure_topics
    from socpipe.sinks.elasticsearch import connect, install_templates

    config = load_config(args)
    created = ensure_topics(config.kafka)
    print(f"kafka topics: {', '.join(created) if created else 'all present'}")
    templates = install_templates(connect(config.elasticsearch), config.elasticsearch)
    settings = config.elasticsearch
    indices = ", ".join(
        (settings.alerts_index, settings.incidents_index, settings.forwarding_index)
    )
    print(f"elasticsearch templates: {', '.join(templates)}; indices: {indices}")
    return 0

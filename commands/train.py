"""``socpipe train``: fit an anomaly model from log files or from indexed history."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from socpipe.commands.common import add_config_argument, load_config, require_paths, require_zone
from socpipe.core.errors import DependencyUnavailable, SocpipeError, UsageError

NAME = "train"
HELP = "fit an anomaly model from logs or history"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from socpipe.collectors.parsers import PARSERS

    parser.add_argument("kind", choices=["behaviour", "log-pattern"])
    parser.add_argument("paths", nargs="*", type=Path, help="training logs (taken as normal)")
    parser.add_argument(
        "--from-elasticsearch",
        metavar="INDEX",
        help="train on indexed events instead of files (e.g. 'soc-events-*'; uses --config)",
    )
    parser.add_argument("--since", help="with --from-elasticsearch: from this time (ISO 8601)")
    parser.add_argument("--until", help="with --from-elasticsearch: before this time")
    add_config_argument(parser)
    parser.add_argument("--out", type=Path, required=True, help="model folder to write")
    parser.add_argument("--name", help="model name (default: the --out folder name)")
    parser.add_argument(
        "--entity", default="source.ip", help="behaviour: whose behaviour (default: %(default)s)"
    )
    parser.add_argument(
        "--session-field",
        default="host.name",
        help="log-pattern: what a session is per window (default: %(default)s)",
    )
    parser.add_argument("--window", default="1h", help="window length, e.g. 10m, 1h (default 1h)")
    parser.add_argument("--format", default="auto", choices=["auto", *sorted(PARSERS)])
    parser.add_argument("--agency", default="unknown")
    parser.add_argument("--timezone", default="UTC")


def run(args: argparse.Namespace) -> int:
    if bool(args.paths) == bool(args.from_elasticsearch):
        raise UsageError("give log files or --from-elasticsearch INDEX")
    require_paths(args.paths)
    zone = require_zone(args.timezone)
    window = _window_secs(args.window)

    from socpipe.collectors.files import FileEventReader, expand_paths
    from socpipe.collectors.parsers import ParseContext
    from socpipe.detectors.anomaly.training import train_behaviour, train_log_pattern

    reader = FileEventReader(ParseContext(args.agency, None, zone), args.format)
    if args.from_elasticsearch:
        from socpipe.collectors.elasticsearch_history import read_history
        from socpipe.sinks.elasticsearch import connect

        client = connect(load_config(args).elasticsearch)
        events: Iterable[dict] = read_history(
            client, args.from_elasticsearch, args.since, args.until
        )
        span = f"{args.since or 'start'}..{args.until or 'now'}"
        sources = [f"elasticsearch:{args.from_elasticsearch} {span}"]
    else:
        files = expand_paths(args.paths)
        events = reader.read(files)
        sources = [str(path) for path in files]
    name = args.name or args.out.name
    trainer = train_behaviour if args.kind == "behaviour" else train_log_pattern
    field = args.entity if args.kind == "behaviour" else args.session_field
    manifest = _train(trainer, _with_progress(events), args.out, name, field, window, sources)
    training = manifest["training"]
    print(
        f"trained {manifest['kind']} model {name!r} on {training['events']:,} events"
        f" ({training['windows']:,} windows, {training['first_event']} .. {training['last_event']})"
        f" -> {args.out}",
        file=sys.stderr,
    )
    # The out-of-band checksum that lets `scan --model-sha256` or the daemon load this model.
    from socpipe.detectors.anomaly.artifact import model_sha256

    print(f"model sha256: {model_sha256(args.out)}", file=sys.stderr)
    for problem in reader.stats.unreadable_files:
        print(f"  unreadable: {problem}", file=sys.stderr)
    return 0


def _window_secs(text: str) -> float:
    from sigma.correlations import SigmaCorrelationTimespan
    from sigma.exceptions import SigmaTimespanError

    try:
        return float(SigmaCorrelationTimespan(text).seconds)
    except SigmaTimespanError:
        raise UsageError(f"--window {text!r} is not like 30s, 10m, 1h") from None


Trainer = Callable[[Iterable[dict], Path, str, str, float, list[str]], dict[str, Any]]


def _train(
    trainer: Trainer,
    events: Iterable[dict],
    out: Path,
    name: str,
    field: str,
    window: float,
    sources: list[str],
) -> dict[str, Any]:
    """Run the trainer, turning what can go wrong on the way into socpipe errors."""
    from elastic_transport import TransportError
    from elasticsearch import ApiError

    try:
        return trainer(events, out, name, field, window, sources)
    except ValueError as error:
        raise SocpipeError(f"cannot train: {error}") from None
    except ApiError as error:
        raise DependencyUnavailable(f"elasticsearch: {error}") from None
    except TransportError as error:
        raise DependencyUnavailable(f"elasticsearch unreachable: {error}") from None


def _with_progress(events: Iterable[dict], every: int = 100_000) -> Iterator[dict]:
    """Pass events through, telling the user how far a long read has come."""
    count = 0
    for count, event in enumerate(events, 1):
        if count % every == 0:
            print(f"  read {count:,} events", file=sys.stderr)
        yield event

"""socpipe command line: the entry point that wires sources, detectors and sinks.

Commands:
  socpipe scan PATH...        parse files and run the detectors in-process (no servers)
  socpipe rules check DIR...  validate Sigma rules, listing every problem with its file
  socpipe rules test [DIR...] run the test events kept beside each rule
  socpipe train KIND PATH...  fit an anomaly model (behaviour or log-pattern) from log files
  socpipe setup               create the Kafka topics and Elasticsearch templates (idempotent)
  socpipe run                 the daemon: detect and index stages as Kafka consumer groups
  socpipe collect file|syslog agency collectors publishing events to Kafka
  socpipe forward test|status check the destinations alerts are forwarded to
  socpipe console             the analysts' web console
  socpipe users ...           console users: add, list, disable, passwd
  socpipe alerts ...          triage from the terminal: list, show, set, load
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from collectors.files import DEFAULT_MAX_LINE_BYTES
from collectors.parsers import PARSERS
from detectors.rules import DEFAULT_RULE_DIR, load_rules

if TYPE_CHECKING:
    from detectors.suppression import Suppressor

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
#: 128 + SIGINT, what shells report for a command stopped with Ctrl-C.
EXIT_INTERRUPTED = 130
#: The commands whose speed depends on the compiled hot path.
PER_EVENT_COMMANDS = ("scan", "run", "collect")
CONSOLE_COMMANDS = ("console", "users", "alerts")

log = logging.getLogger("socpipe")


def hot_path_compiled() -> bool:
    """Whether `pip install` compiled the per-event modules (setup.py) or they run interpreted."""
    from detectors import engine

    return not str(engine.__file__).endswith(".py")


def _warn_if_interpreted() -> None:
    # The install falls back to interpreted modules without a compiler, silently: the operator
    # should hear of the halved throughput from the tool, not from a lagging consumer group.
    if not hot_path_compiled():
        log.warning(
            "hot path not compiled: parsing and detection run interpreted, at about half the "
            "speed (install with a C compiler and without SOCPIPE_PURE_PYTHON=1; README, "
            "'Compiled hot path')"
        )


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="socpipe", description="SOC log pipeline")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    commands = parser.add_subparsers(dest="command", required=True)

    config_help = "daemon configuration (default: config/socpipe.yml)"
    scan = commands.add_parser("scan", help="scan log files with the detectors, no servers needed")
    scan.add_argument("paths", nargs="+", type=Path, help="files or folders (.gz and .evtx too)")
    scan.add_argument(
        "--rules",
        action="append",
        type=Path,
        help="rule file or folder (repeatable; default: the bundled rules/)",
    )
    scan.add_argument(
        "--format", default="auto", choices=["auto", *sorted(PARSERS)], help="force one log format"
    )
    scan.add_argument("--agency", default="unknown", help="agency id stamped on every event")
    scan.add_argument("--agency-name", help="agency display name")
    scan.add_argument(
        "--timezone",
        default="UTC",
        help="zone of timestamps without offset (e.g. Asia/Ho_Chi_Minh)",
    )
    scan.add_argument("--out", type=Path, help="write alerts as JSON Lines here ('-' for stdout)")
    scan.add_argument(
        "--max-line-bytes",
        type=int,
        default=DEFAULT_MAX_LINE_BYTES,
        help="longer lines are truncated and tagged (default: %(default)s)",
    )
    scan.add_argument("--no-progress", action="store_true", help="no progress output on stderr")
    scan.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="worker processes that parse and match (default: 1; 0: one per CPU);"
        " alerts are the same as with one",
    )
    scan.add_argument(
        "--indicators",
        action="append",
        type=Path,
        default=[],
        help="STIX 2.1 bundle of indicators to match every event against (repeatable)",
    )
    scan.add_argument(
        "--model",
        action="append",
        type=Path,
        default=[],
        help="anomaly model folder from `socpipe train` (repeatable)",
    )
    scan.add_argument(
        "--suppressions",
        type=Path,
        help="suppressions exported from the console (/suppressions/export.json): matching"
        " alerts are counted instead of written",
    )

    train = commands.add_parser("train", help="fit an anomaly model from logs or history")
    train.add_argument("kind", choices=["behaviour", "log-pattern"])
    train.add_argument("paths", nargs="*", type=Path, help="training logs (taken as normal)")
    train.add_argument(
        "--from-elasticsearch",
        metavar="INDEX",
        help="train on indexed events instead of files (e.g. 'soc-events-*'; uses --config)",
    )
    train.add_argument("--since", help="with --from-elasticsearch: from this time (ISO 8601)")
    train.add_argument("--until", help="with --from-elasticsearch: before this time")
    train.add_argument("--config", type=Path, help=config_help)
    train.add_argument("--out", type=Path, required=True, help="model folder to write")
    train.add_argument("--name", help="model name (default: the --out folder name)")
    train.add_argument(
        "--entity", default="source.ip", help="behaviour: whose behaviour (default: %(default)s)"
    )
    train.add_argument(
        "--session-field",
        default="host.name",
        help="log-pattern: what a session is per window (default: %(default)s)",
    )
    train.add_argument("--window", default="1h", help="window length, e.g. 10m, 1h (default 1h)")
    train.add_argument("--format", default="auto", choices=["auto", *sorted(PARSERS)])
    train.add_argument("--agency", default="unknown")
    train.add_argument("--timezone", default="UTC")

    rules = commands.add_parser("rules", help="validate and test Sigma rules")
    rule_commands = rules.add_subparsers(dest="rules_command", required=True)
    check = rule_commands.add_parser("check", help="validate rules; list every problem")
    check.add_argument("paths", nargs="+", type=Path)
    test = rule_commands.add_parser("test", help="run the test events beside each rule")
    test.add_argument("paths", nargs="*", type=Path, default=[DEFAULT_RULE_DIR])

    setup = commands.add_parser("setup", help="create Kafka topics and Elasticsearch templates")
    setup.add_argument("--config", type=Path, help=config_help)
    prune = commands.add_parser(
        "prune",
        help="delete daily event indices older than the retention period",
        description="Delete the daily event indices (<events prefix>YYYY.MM.DD) dated more"
        " than --keep-days days before today (UTC). The alerts index and indices whose name is"
        " not a date are never deleted; indices dated after tomorrow are reported.",
    )
    prune.add_argument("--config", type=Path, help=config_help)
    prune.add_argument(
        "--keep-days", type=int, required=True, help="days of events to keep (at least 1)"
    )
    prune.add_argument(
        "--dry-run", action="store_true", help="say what would be deleted, delete nothing"
    )
    run = commands.add_parser("run", help="run the daemon stages")
    run.add_argument("--config", type=Path, help=config_help)
    run.add_argument(
        "--stages", default="detect,index", help="comma-separated: detect,index,forward"
    )

    forward = commands.add_parser("forward", help="check the forwarding destinations")
    forward_commands = forward.add_subparsers(dest="forward_command", required=True)
    forward_test = forward_commands.add_parser("test", help="send a synthetic alert to DEST")
    forward_test.add_argument("destination", help="a name under forwarding.destinations")
    forward_status = forward_commands.add_parser(
        "status", help="lag, last success and last failure per destination"
    )
    for command in (forward_test, forward_status):
        command.add_argument("--config", type=Path, help=config_help)

    _add_console_commands(commands, config_help)

    collect = commands.add_parser("collect", help="collect agency logs into Kafka")
    collectors = collect.add_subparsers(dest="collector", required=True)
    follow = collectors.add_parser("file", help="follow files (tail -F) with persisted offsets")
    follow.add_argument("--glob", action="append", required=True, help="file pattern (repeatable)")
    follow.add_argument("--state", type=Path, required=True, help="where read positions are kept")
    syslog = collectors.add_parser("syslog", help="receive syslog over UDP, TCP or TLS")
    syslog.add_argument("--udp", action="append", default=[], metavar="HOST:PORT")
    syslog.add_argument("--tcp", action="append", default=[], metavar="HOST:PORT")
    syslog.add_argument("--tls", action="append", default=[], metavar="HOST:PORT")
    syslog.add_argument("--tls-cert", help="server certificate (PEM) for --tls")
    syslog.add_argument("--tls-key", help="server key (PEM) for --tls")
    syslog.add_argument("--tls-client-ca", help="require client certificates from this CA")
    syslog.add_argument(
        "--spool", type=Path, required=True, help="journal folder: messages wait here for Kafka"
    )
    syslog.add_argument(
        "--spool-max-bytes", type=int, default=1 << 30, help="journal bound (default 1 GiB)"
    )
    for command in (follow, syslog):
        command.add_argument("--config", type=Path, help=config_help)
        command.add_argument("--agency", required=True, help="agency id stamped on every event")
        command.add_argument("--agency-name")
        command.add_argument("--timezone", default="UTC")
    return parser


def _add_console_commands(commands: Any, config_help: str) -> None:
    console = commands.add_parser("console", help="the analysts' web console")
    console.add_argument("--listen", metavar="HOST:PORT", help="default: console.listen")
    console.add_argument("--tls-cert", help="PEM certificate: serve HTTPS")
    console.add_argument("--tls-key", help="PEM private key of --tls-cert")

    users = commands.add_parser("users", help="console users and their roles")
    user_commands = users.add_subparsers(dest="users_command", required=True)
    add = user_commands.add_parser(
        "add", help="add a user (password from standard input, or prompted)"
    )
    add.add_argument("name")
    add.add_argument(
        "--role",
        required=True,
        choices=[
            "admin",
            "central-analyst",
            "central-auditor",
            "agency-analyst",
            "agency-viewer",
        ],
    )
    add.add_argument("--agency", help="the agency id (agency roles only)")
    listing = user_commands.add_parser("list", help="list users")
    disable = user_commands.add_parser("disable", help="disable a user; ends their sessions")
    disable.add_argument("name")
    passwd = user_commands.add_parser("passwd", help="set a new password; ends their sessions")
    passwd.add_argument("name")

    alerts = commands.add_parser("alerts", help="triage alerts from the terminal")
    alert_commands = alerts.add_subparsers(dest="alerts_command", required=True)
    user_help = "act as this console user (default: $SOCPIPE_CONSOLE_USER)"
    show_list = alert_commands.add_parser("list", help="alerts of a filter, newest first")
    show_list.add_argument("--status", action="append", default=[], help="repeatable")
    show_list.add_argument("--level", action="append", default=[], help="repeatable")
    show_list.add_argument("--closed", action="store_true", help="include closed alerts")
    show_list.add_argument("--agency")
    show_list.add_argument("--assignee", help="'-' for unassigned")
    show_list.add_argument("--rule", help="rule id")
    show_list.add_argument("--host")
    show_list.add_argument("--since", help="e.g. now-24h or 2026-03-03T00:00:00Z")
    show_list.add_argument("--query", "-q", help="query language, as in the console")
    show_list.add_argument("--limit", type=int, default=50, choices=[25, 50, 100, 200])
    show = alert_commands.add_parser("show", help="one alert as JSON, with its version")
    show.add_argument("alert_id")
    change = alert_commands.add_parser(
        "set", help="change status, resolution, assignee; add a note"
    )
    change.add_argument("alert_ids", nargs="+", metavar="ALERT_ID")
    change.add_argument("--status", choices=["new", "acknowledged", "in_progress", "closed"])
    change.add_argument("--resolution", choices=["true_positive", "false_positive", "benign"])
    change.add_argument("--assignee")
    change.add_argument("--unassign", action="store_true")
    change.add_argument("--note")
    change.add_argument(
        "--version", help="SEQ:TERM from `alerts show`: refuse if the alert changed since"
    )
    load = alert_commands.add_parser(
        "load", help="index the alerts of a `socpipe scan --out` file (idempotent)"
    )
    load.add_argument("file", type=Path)
    for command in (show_list, show, change):
        command.add_argument(
            "--user", default=os.environ.get("SOCPIPE_CONSOLE_USER"), help=user_help
        )
    for command in (console, add, listing, disable, passwd, show_list, show, change, load):
        command.add_argument("--config", type=Path, help=config_help)


def _missing(paths: Sequence[Path]) -> list[Path]:
    return [path for path in paths if not path.exists()]


def command_scan(args: argparse.Namespace) -> int:
    from detectors.anomaly.artifact import ModelArtifactError, load_scorer
    from detectors.suppression import Suppressor, load_file
    from scanner.parallel import WorkerDied
    from scanner.run import ScanOptions, run_scan

    rule_paths = args.rules or [DEFAULT_RULE_DIR]
    missing = _missing([*args.paths, *rule_paths])
    if missing:
        for path in missing:
            print(f"socpipe: error: no such file or folder: {path}", file=sys.stderr)
        return EXIT_USAGE
    try:
        ZoneInfo(args.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        print(f"socpipe: error: unknown timezone {args.timezone!r}", file=sys.stderr)
        return EXIT_USAGE
    if args.max_line_bytes < 1024:
        print("socpipe: error: --max-line-bytes must be at least 1024", file=sys.stderr)
        return EXIT_USAGE
    if args.jobs < 0:
        print("socpipe: error: --jobs must be 0 (one per CPU) or more", file=sys.stderr)
        return EXIT_USAGE
    report = load_rules(rule_paths)
    for problem in report.errors:
        print(f"socpipe: rule skipped: {problem}", file=sys.stderr)
    if not report.rules:
        print("socpipe: error: no usable rule was loaded", file=sys.stderr)
        return EXIT_FAILED
    try:
        scorers = [load_scorer(path) for path in args.model]
        indicators = _indicator_files(args.indicators)
        suppressor = Suppressor(load_file(args.suppressions)) if args.suppressions else None
    except (ModelArtifactError, ValueError) as error:
        print(f"socpipe: error: {error}", file=sys.stderr)
        return EXIT_FAILED
    options = ScanOptions(
        paths=args.paths,
        rule_paths=rule_paths,
        format_name=args.format,
        agency_id=args.agency,
        agency_name=args.agency_name,
        timezone=args.timezone,
        out=args.out,
        max_line_bytes=args.max_line_bytes,
        progress=not args.no_progress,
        jobs=args.jobs or len(os.sched_getaffinity(0)),
    )
    try:
        summary = run_scan(
            options, rules=report, models=scorers, indicators=indicators, suppressor=suppressor
        )
    except (OSError, WorkerDied) as error:
        print(f"socpipe: error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        kept = f"; the alerts found so far are in {args.out}" if args.out else ""
        print(f"\nsocpipe: scan interrupted{kept}", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(summary.render(), file=sys.stderr)
    if suppressor is not None:
        print(_suppressed_summary(suppressor), file=sys.stderr)
    if args.out and str(args.out) != "-":
        print(f"  alerts written to {args.out}", file=sys.stderr)
    return EXIT_OK


def _suppressed_summary(suppressor: Suppressor) -> str:
    counts = suppressor.counts()
    lines = [
        f"  suppressed: {sum(counts.values())} alerts by {len(counts)} of"
        f" {len(suppressor)} suppressions"
    ]
    names = {s.id: s.rule_name or s.rule_id for s in suppressor.suppressions}
    lines += [f"    {count:>7}  {names[ident]} ({ident})" for ident, count in counts.most_common(5)]
    return "\n".join(lines)


def _indicator_files(paths: Sequence[Path]):  # type: ignore[no-untyped-def]
    """The indicators of STIX bundle files, or None when no file was given."""
    from forwarding.indicators import IndicatorStore, load_bundle_file

    if not paths:
        return None
    store = IndicatorStore()
    for path in paths:
        load_bundle_file(path, store)
    return store


def command_train(args: argparse.Namespace) -> int:
    from elastic_transport import TransportError
    from elasticsearch import ApiError
    from sigma.correlations import SigmaCorrelationTimespan
    from sigma.exceptions import SigmaTimespanError

    from collectors.files import FileEventReader, expand_paths
    from collectors.parsers import ParseContext
    from detectors.anomaly.training import train_behaviour, train_log_pattern

    if bool(args.paths) == bool(args.from_elasticsearch):
        print("socpipe: error: give log files or --from-elasticsearch INDEX", file=sys.stderr)
        return EXIT_USAGE
    missing = _missing(args.paths)
    if missing:
        for path in missing:
            print(f"socpipe: error: no such file or folder: {path}", file=sys.stderr)
        return EXIT_USAGE
    try:
        window = float(SigmaCorrelationTimespan(args.window).seconds)
    except SigmaTimespanError:
        print(f"socpipe: error: --window {args.window!r} is not like 30s, 10m, 1h", file=sys.stderr)
        return EXIT_USAGE
    reader = FileEventReader(ParseContext(args.agency, None, ZoneInfo(args.timezone)), args.format)
    if args.from_elasticsearch:
        from collectors.elasticsearch_history import read_history
        from sinks.elasticsearch import connect

        client = connect(_config(args).elasticsearch)
        events = read_history(client, args.from_elasticsearch, args.since, args.until)
        span = f"{args.since or 'start'}..{args.until or 'now'}"
        sources = [f"elasticsearch:{args.from_elasticsearch} {span}"]
    else:
        files = expand_paths(args.paths)
        events = reader.read(files)
        sources = [str(path) for path in files]
    name = args.name or args.out.name
    trainer = train_behaviour if args.kind == "behaviour" else train_log_pattern
    field = args.entity if args.kind == "behaviour" else args.session_field
    try:
        manifest = trainer(_with_progress(events), args.out, name, field, window, sources)
    except ValueError as error:
        print(f"socpipe: error: cannot train: {error}", file=sys.stderr)
        return EXIT_FAILED
    except ApiError as error:
        print(f"socpipe: error: elasticsearch: {error}", file=sys.stderr)
        return EXIT_FAILED
    except TransportError as error:
        print(f"socpipe: error: elasticsearch unreachable: {error}", file=sys.stderr)
        return EXIT_FAILED
    training = manifest["training"]
    print(
        f"trained {manifest['kind']} model {name!r} on {training['events']:,} events"
        f" ({training['windows']:,} windows, {training['first_event']} .. {training['last_event']})"
        f" -> {args.out}",
        file=sys.stderr,
    )
    for problem in reader.stats.unreadable_files:
        print(f"  unreadable: {problem}", file=sys.stderr)
    return EXIT_OK


def _with_progress(events: Iterable[dict], every: int = 100_000) -> Iterator[dict]:
    """Pass events through, telling the user how far a long read has come."""
    count = 0
    for count, event in enumerate(events, 1):
        if count % every == 0:
            print(f"  read {count:,} events", file=sys.stderr)
        yield event


def command_rules_check(args: argparse.Namespace) -> int:
    missing = _missing(args.paths)
    if missing:
        for path in missing:
            print(f"socpipe: error: no such file or folder: {path}", file=sys.stderr)
        return EXIT_USAGE
    report = load_rules(args.paths)
    for problem in report.errors:
        print(f"error: {problem}")
    for problem in report.unsupported:
        print(f"unsupported: {problem}")
    print(
        f"{report.files} files: {len(report.rules)} rules and"
        f" {len(report.correlations)} correlations compiled,"
        f" {len(report.errors)} with errors, {len(report.unsupported)} unsupported"
    )
    return EXIT_FAILED if report.errors else EXIT_OK


def command_rules_test(args: argparse.Namespace) -> int:
    from detectors.rule_tests import run_rule_tests

    report = load_rules(args.paths)
    for problem in report.errors:
        print(f"error: {problem}")
    results = run_rule_tests(report)
    failed = [result for result in results if not result.passed]
    for result in failed:
        print(f"FAIL {result.case}: {result.rule.title}: {result.reason}")
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return EXIT_FAILED if failed or report.errors else EXIT_OK


def _config(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from daemon.config import DEFAULT_CONFIG, load_config

    return load_config(args.config or DEFAULT_CONFIG)


def command_setup(args: argparse.Namespace) -> int:
    from daemon.kafka_io import ensure_topics
    from sinks.elasticsearch import connect, install_templates

    config = _config(args)
    created = ensure_topics(config.kafka)
    print(f"kafka topics: {', '.join(created) if created else 'all present'}")
    templates = install_templates(connect(config.elasticsearch), config.elasticsearch)
    alerts = config.elasticsearch.alerts_index
    print(f"elasticsearch templates: {', '.join(templates)}; alerts index: {alerts}")
    return EXIT_OK


def command_prune(args: argparse.Namespace) -> int:
    from elasticsearch import ApiError, TransportError

    from sinks.elasticsearch import connect
    from sinks.retention import daily_indices, delete_indices, plan_retention

    if args.keep_days < 1:
        print("socpipe: error: --keep-days must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    settings = _config(args).elasticsearch
    prefix = settings.events_index_prefix
    client = connect(settings)
    try:
        names = daily_indices(client, prefix)
        today = datetime.now(UTC).date()
        plan = plan_retention(names, prefix, args.keep_days, today)
        if plan.future:
            print(
                f"warning: {len(plan.future)} indices are dated after tomorrow (events from a"
                f" host with a wrong clock?), kept: {', '.join(plan.future)}",
                file=sys.stderr,
            )
        if plan.unrecognised:
            print(f"left alone (not a daily index): {', '.join(plan.unrecognised)}")
        verb = "would delete" if args.dry_run else "deleting"
        for name in plan.expired:
            print(f"{verb} {name}")
        if not args.dry_run:
            delete_indices(client, plan.expired)
    except (ApiError, TransportError) as error:
        print(f"socpipe: error: Elasticsearch at {settings.hosts}: {error}", file=sys.stderr)
        return EXIT_FAILED
    done = "would delete" if args.dry_run else "deleted"
    print(
        f"{prefix}*: {len(names)} indices; {done} {len(plan.expired)} dated before"
        f" {today - timedelta(days=args.keep_days):%Y.%m.%d}, kept {len(plan.kept)}"
    )
    return EXIT_OK


def command_run(args: argparse.Namespace) -> int:
    from daemon import runner

    names = [name.strip() for name in args.stages.split(",") if name.strip()]
    unknown = sorted(set(names) - set(runner.STAGE_NAMES))
    if unknown or not names:
        print(
            f"socpipe: error: unknown stage(s) {unknown}; choose from {runner.STAGE_NAMES}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    runner.run(_config(args), names)
    return EXIT_OK


def command_forward(args: argparse.Namespace) -> int:
    from forwarding.cli import forward_status, forward_test

    config = _config(args)
    if args.forward_command == "test":
        try:
            delivered = forward_test(config, args.destination, sys.stdout)
        except ValueError as error:
            print(f"socpipe: error: {error}", file=sys.stderr)
            return EXIT_USAGE
        return EXIT_OK if delivered else EXIT_FAILED
    return EXIT_OK if forward_status(config, sys.stdout) else EXIT_FAILED


def command_collect(args: argparse.Namespace) -> int:
    import signal
    import threading

    from collectors.parsers import ParseContext
    from collectors.publisher import EventPublisher

    config = _config(args)
    context = ParseContext(args.agency, args.agency_name, ZoneInfo(args.timezone))
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    if args.collector == "file":
        from collectors.follow import FileFollower

        publisher = EventPublisher(config.kafka, args.collector)
        FileFollower(args.glob, args.state, publisher, context).run(stop)
        publisher.close()
    else:
        from collectors.publisher import SpooledPublisher
        from collectors.spool import DiskSpool
        from collectors.syslog_listener import SyslogListener, SyslogReceiver, tls_context

        spool = DiskSpool(args.spool, args.spool_max_bytes)
        listener = SyslogListener(
            SyslogReceiver(SpooledPublisher(config.kafka, "syslog", spool), context)
        )
        for address in args.udp:
            print(f"syslog udp on {listener.add_udp(address)}", file=sys.stderr)
        for address in args.tcp:
            print(f"syslog tcp on {listener.add_tcp(address)}", file=sys.stderr)
        if args.tls:
            if not (args.tls_cert and args.tls_key):
                print("socpipe: error: --tls needs --tls-cert and --tls-key", file=sys.stderr)
                return EXIT_USAGE
            tls = tls_context(args.tls_cert, args.tls_key, args.tls_client_ca)
            for address in args.tls:
                print(f"syslog tls on {listener.add_tcp(address, tls)}", file=sys.stderr)
        if not listener.servers:
            print("socpipe: error: give at least one of --udp, --tcp, --tls", file=sys.stderr)
            return EXIT_USAGE
        listener.run(stop)
    return EXIT_OK


def command_console(args: argparse.Namespace) -> int:
    from console.cli import serve_console

    serve_console(_config(args), args.listen, args.tls_cert, args.tls_key)
    return EXIT_OK


def command_users(args: argparse.Namespace) -> int:
    from console import cli

    config = _config(args)
    if args.users_command == "add":
        user = cli.users_add(
            config, args.name, args.role, args.agency, cli.read_password(sys.stdin)
        )
        print(f"user {user.name} added ({user.role}{', ' + user.agency if user.agency else ''})")
    elif args.users_command == "list":
        print(cli.format_users(cli.users_list(config)))
    elif args.users_command == "disable":
        ended = cli.users_disable(config, args.name)
        print(f"user {args.name} disabled; {ended} sessions ended")
    else:
        cli.users_passwd(config, args.name, cli.read_password(sys.stdin))
        print(f"password of {args.name} changed; their sessions ended")
    return EXIT_OK


def command_alerts(args: argparse.Namespace) -> int:
    from console import cli
    from console.triage import Change

    config = _config(args)
    if args.alerts_command == "list":
        params = {
            "status": args.status,
            "level": args.level,
            "closed": ["1"] if args.closed else [],
            "agency": [args.agency] if args.agency else [],
            "assignee": [args.assignee] if args.assignee else [],
            "rule": [args.rule] if args.rule else [],
            "host": [args.host] if args.host else [],
            "since": [args.since] if args.since else [],
            "q": [args.query] if args.query else [],
            "size": [str(args.limit)],
        }
        print(cli.format_alert_rows(*cli.alerts_list(config, params, args.user)))
    elif args.alerts_command == "show":
        print(cli.dumps(cli.alerts_show(config, args.alert_id, args.user)))
    elif args.alerts_command == "set":
        change = Change(
            status=args.status,
            resolution=args.resolution,
            assignee="" if args.unassign else args.assignee,
            note=args.note,
        )
        if change.empty:
            print(
                "socpipe: error: give --status, --assignee, --unassign or --note", file=sys.stderr
            )
            return EXIT_USAGE
        print(cli.alerts_set(config, args.alert_ids, change, args.user, args.version))
    else:
        if not args.file.is_file():
            print(f"socpipe: error: no such file: {args.file}", file=sys.stderr)
            return EXIT_USAGE
        print(cli.alerts_load(config, args.file))
    return EXIT_OK


def _console_command(args: argparse.Namespace) -> int:
    """The console's commands, with their errors turned into messages and exit codes."""
    from elasticsearch import ApiError, TransportError

    from console.cli import CommandError
    from console.triage import TriageError

    handler = {"console": command_console, "users": command_users, "alerts": command_alerts}
    try:
        return handler[args.command](args)
    except (CommandError, TriageError) as error:
        print(f"socpipe: error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except ApiError as error:
        print(f"socpipe: error: elasticsearch: {error}", file=sys.stderr)
        return EXIT_FAILED
    except TransportError as error:
        print(f"socpipe: error: elasticsearch unreachable: {error}", file=sys.stderr)
        return EXIT_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    if args.command in PER_EVENT_COMMANDS:
        _warn_if_interpreted()
    if args.command == "scan":
        return command_scan(args)
    if args.command in ("setup", "prune", "run", "collect", "train", "forward", *CONSOLE_COMMANDS):
        from daemon.config import ConfigError
        from detectors.anomaly.artifact import ModelArtifactError

        handler = {
            **dict.fromkeys(CONSOLE_COMMANDS, _console_command),
            "setup": command_setup,
            "prune": command_prune,
            "run": command_run,
            "collect": command_collect,
            "train": command_train,
            "forward": command_forward,
        }[args.command]
        try:
            return handler(args)
        except ConfigError as error:
            print(f"socpipe: config error: {error}", file=sys.stderr)
            return EXIT_USAGE
        except ModelArtifactError as error:
            print(f"socpipe: error: {error}", file=sys.stderr)
            return EXIT_FAILED
    if args.rules_command == "check":
        return command_rules_check(args)
    return command_rules_test(args)


if __name__ == "__main__":
    sys.exit(main())

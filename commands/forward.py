"""``socpipe forward test|status|report|start-from``: check the destinations incidents are
forwarded to, see what reached them, and move where a destination reads from."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime

from socpipe.commands.common import add_config_argument, load_config
from socpipe.core.errors import UsageError

NAME = "forward"
HELP = "check the forwarding destinations and what reached them"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="forward_command", required=True)
    test = commands.add_parser("test", help="send a synthetic incident to DEST")
    test.add_argument("destination", help="a name under forwarding.destinations")
    status = commands.add_parser(
        "status",
        help="lag, last success and last failure per destination; with --alert or --incident,"
        " what each destination did with it",
    )
    which = status.add_mutually_exclusive_group()
    which.add_argument("--alert", metavar="ID", help="the incident of this alert")
    which.add_argument("--incident", metavar="ID")
    report = commands.add_parser(
        "report", help="a day's forwarding per destination: outcomes, levels, agencies"
    )
    report.add_argument("--day", metavar="YYYY-MM-DD", help="a UTC day (default: today)")
    start = commands.add_parser(
        "start-from",
        help="move where DEST reads incidents from (shows what it would send; --yes to apply)",
    )
    start.add_argument("destination", help="a name under forwarding.destinations")
    start.add_argument("position", help="earliest, latest, or an ISO 8601 time with a zone")
    start.add_argument("--yes", action="store_true", help="move it (the stage must be stopped)")
    for command in (test, status, report, start):
        add_config_argument(command)


def _day(text: str | None) -> date:
    if text is None:
        return datetime.now(UTC).date()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--day: {text!r} is not a date (YYYY-MM-DD)") from None


def run(args: argparse.Namespace) -> int:
    from socpipe.forwarding.cli import forward_status, forward_test, start_from

    if args.forward_command == "report":
        day = _day(args.day)
    config = load_config(args)
    if args.forward_command == "test":
        return 0 if forward_test(config, args.destination, sys.stdout) else 1
    if args.forward_command == "start-from":
        return 0 if start_from(config, args.destination, args.position, args.yes, sys.stdout) else 1
    if args.forward_command == "status" and not (args.alert or args.incident):
        return 0 if forward_status(config, sys.stdout) else 1

    from socpipe.forwarding.report import render_daily, render_incident
    from socpipe.sinks import ledger
    from socpipe.sinks.elasticsearch import connect

    client = connect(config.elasticsearch)
    settings = config.elasticsearch
    if args.forward_command == "report":
        render_daily(day.isoformat(), ledger.daily_volume(client, settings, day), sys.stdout)
        return 0
    incident_id = args.incident
    if args.alert:
        incident_id = ledger.incident_of_alert(client, settings, args.alert)
        if incident_id is None:
            print(f"alert {args.alert} not found in {settings.alerts_index}", file=sys.stdout)
            return 1
    render_incident(
        incident_id,
        ledger.incident_document(client, settings, incident_id),
        ledger.ledger_entries(client, settings, incident_id),
        sys.stdout,
        alert_id=args.alert,
    )
    return 0

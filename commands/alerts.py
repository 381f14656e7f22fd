"""``socpipe alerts list|show|set|load``: triage from the terminal, with the same service,
concurrency guard and audit as the console's pages."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from socpipe.commands.common import (
    add_config_argument,
    elasticsearch_errors,
    load_config,
    require_paths,
)
from socpipe.core.errors import SocpipeError, UsageError

NAME = "alerts"
HELP = "triage alerts from the terminal"
STATUSES = ("new", "acknowledged", "in_progress", "closed")
RESOLUTIONS = ("true_positive", "false_positive", "benign")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="alerts_command", required=True)
    user_help = "act as this console user (default: $SOCPIPE_CONSOLE_USER)"
    listing = commands.add_parser("list", help="alerts of a filter, newest first")
    listing.add_argument("--status", action="append", default=[], help="repeatable")
    listing.add_argument("--level", action="append", default=[], help="repeatable")
    listing.add_argument("--closed", action="store_true", help="include closed alerts")
    listing.add_argument("--agency")
    listing.add_argument("--assignee", help="'-' for unassigned")
    listing.add_argument("--rule", help="rule id")
    listing.add_argument("--host")
    listing.add_argument("--since", help="e.g. now-24h or 2026-03-03T00:00:00Z")
    listing.add_argument("--query", "-q", help="query language, as in the console")
    listing.add_argument("--limit", type=int, default=50, choices=[25, 50, 100, 200])
    show = commands.add_parser("show", help="one alert as JSON, with its version")
    show.add_argument("alert_id")
    change = commands.add_parser("set", help="change status, resolution, assignee; add a note")
    change.add_argument("alert_ids", nargs="+", metavar="ALERT_ID")
    change.add_argument("--status", choices=STATUSES)
    change.add_argument("--resolution", choices=RESOLUTIONS)
    change.add_argument("--assignee")
    change.add_argument("--unassign", action="store_true")
    change.add_argument("--note")
    change.add_argument(
        "--version", help="SEQ:TERM from `alerts show`: refuse if the alert changed since"
    )
    load = commands.add_parser(
        "load", help="index the alerts of a `socpipe scan --out` file (idempotent)"
    )
    load.add_argument("file", type=Path)
    for command in (listing, show, change):
        command.add_argument(
            "--user", default=os.environ.get("SOCPIPE_CONSOLE_USER"), help=user_help
        )
    for command in (listing, show, change, load):
        add_config_argument(command)


def run(args: argparse.Namespace) -> int:
    if args.alerts_command == "load":
        require_paths([args.file])
    from socpipe.console import cli
    from socpipe.console.triage import Change, Conflict, NotFound, TriageError

    config = load_config(args)
    try:
        with elasticsearch_errors():
            if args.alerts_command == "list":
                print(cli.format_alert_rows(*cli.alerts_list(config, _filter(args), args.user)))
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
                    raise UsageError("give --status, --assignee, --unassign or --note")
                print(cli.alerts_set(config, args.alert_ids, change, args.user, args.version))
            else:
                print(cli.alerts_load(config, args.file))
    except (TriageError, NotFound, Conflict) as error:
        raise SocpipeError(str(error)) from None
    return 0


def _filter(args: argparse.Namespace) -> dict[str, list[str]]:
    """The list options as the query parameters the console's queue page takes."""
    return {
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

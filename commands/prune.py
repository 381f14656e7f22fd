"""``socpipe prune``: delete daily event indices older than the retention period."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta

from socpipe.commands.common import add_config_argument, load_config
from socpipe.core.errors import DependencyUnavailable, UsageError

NAME = "prune"
HELP = "delete daily event indices older than the retention period"
DESCRIPTION = (
    "Delete the daily event indices (<events prefix>YYYY.MM.DD) dated more than --keep-days"
    " days before today (UTC). The alerts index and indices whose name is not a date are"
    " never deleted; indices dated after tomorrow are reported."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument(
        "--keep-days", type=int, required=True, help="days of events to keep (at least 1)"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="say what would be deleted, delete nothing"
    )


def run(args: argparse.Namespace) -> int:
    if args.keep_days < 1:
        raise UsageError("--keep-days must be at least 1")
    from elasticsearch import ApiError, TransportError

    from socpipe.sinks.elasticsearch import connect
    from socpipe.sinks.retention import daily_indices, delete_indices, plan_retention

    settings = load_config(args).elasticsearch
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
        raise DependencyUnavailable(f"Elasticsearch at {settings.hosts}: {error}") from None
    done = "would delete" if args.dry_run else "deleted"
    print(
        f"{prefix}*: {len(names)} indices; {done} {len(plan.expired)} dated before"
        f" {today - timedelta(days=args.keep_days):%Y.%m.%d}, kept {len(plan.kept)}"
    )
    return 0

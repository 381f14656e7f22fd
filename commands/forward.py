"""``socpipe forward test|status``: check the destinations alerts are forwarded to."""

from __future__ import annotations

import argparse
import sys

from socpipe.commands.common import add_config_argument, load_config

NAME = "forward"
HELP = "check the forwarding destinations"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="forward_command", required=True)
    test = commands.add_parser("test", help="send a synthetic alert to DEST")
    test.add_argument("destination", help="a name under forwarding.destinations")
    status = commands.add_parser(
        "status", help="lag, last success and last failure per destination"
    )
    for command in (test, status):
        add_config_argument(command)


def run(args: argparse.Namespace) -> int:
    from socpipe.forwarding.cli import forward_status, forward_test

    config = load_config(args)
    if args.forward_command == "test":
        return 0 if forward_test(config, args.destination, sys.stdout) else 1
    return 0 if forward_status(config, sys.stdout) else 1

"""``socpipe users add|list|disable|passwd``: the console's users and their roles."""

from __future__ import annotations

import argparse
import sys

from socpipe.commands.common import add_config_argument, elasticsearch_errors, load_config

NAME = "users"
HELP = "console users and their roles"
ROLES = ("admin", "central-analyst", "central-auditor", "agency-analyst", "agency-viewer")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="users_command", required=True)
    add = commands.add_parser("add", help="add a user (password from standard input, or prompted)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--agency", help="the agency id (agency roles only)")
    listing = commands.add_parser("list", help="list users")
    disable = commands.add_parser("disable", help="disable a user; ends their sessions")
    disable.add_argument("name")
    passwd = commands.add_parser("passwd", help="set a new password; ends their sessions")
    passwd.add_argument("name")
    for command in (add, listing, disable, passwd):
        add_config_argument(command)


def run(args: argparse.Namespace) -> int:
    from socpipe.console import cli

    config = load_config(args)
    with elasticsearch_errors():
        if args.users_command == "add":
            password = cli.read_password(sys.stdin)
            user = cli.users_add(config, args.name, args.role, args.agency, password)
            agency = f", {user.agency}" if user.agency else ""
            print(f"user {user.name} added ({user.role}{agency})")
        elif args.users_command == "list":
            print(cli.format_users(cli.users_list(config)))
        elif args.users_command == "disable":
            ended = cli.users_disable(config, args.name)
            print(f"user {args.name} disabled; {ended} sessions ended")
        else:
            cli.users_passwd(config, args.name, cli.read_password(sys.stdin))
            print(f"password of {args.name} changed; their sessions ended")
    return 0

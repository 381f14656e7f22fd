"""``socpipe config default|check``: the shipped configuration, and checking one's own."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

NAME = "config"
HELP = "print the default configuration, or check a configuration file"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="config_command", required=True)
    commands.add_parser("default", help="print the default configuration (every key documented)")
    check = commands.add_parser("check", help="load a configuration file and report its problems")
    check.add_argument("path", type=Path)


def run(args: argparse.Namespace) -> int:
    from socpipe.core.config import load_config
    from socpipe.core.resources import default_config_path

    if args.config_command == "default":
        sys.stdout.write(default_config_path().read_text(encoding="utf-8"))
        return 0
    config = load_config(args.path)
    rules = ", ".join(str(path) for path in config.rule_paths())
    destinations = ", ".join(d.name for d in config.forwarding.destinations) or "none"
    print(f"{args.path}: valid; rules: {rules}; forward destinations: {destinations}")
    return 0

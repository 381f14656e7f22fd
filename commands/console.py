"""``socpipe console``: the analysts' web console (docs/console.md)."""

from __future__ import annotations

import argparse

from socpipe.commands.common import add_config_argument, elasticsearch_errors, load_config

NAME = "console"
HELP = "the analysts' web console"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--listen", metavar="HOST:PORT", help="default: console.listen")
    parser.add_argument("--tls-cert", help="PEM certificate: serve HTTPS")
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert")
    add_config_argument(parser)


def run(args: argparse.Namespace) -> int:
    from socpipe.console.cli import serve_console

    with elasticsearch_errors():
        serve_console(load_config(args), args.listen, args.tls_cert, args.tls_key)
    return 0

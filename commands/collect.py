"""``socpipe collect file|syslog``: agency collectors publishing events to Kafka."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from socpipe.commands.common import add_config_argument, load_config, require_zone
from socpipe.core.errors import UsageError

NAME = "collect"
HELP = "collect agency logs into Kafka"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    collectors = parser.add_subparsers(dest="collector", required=True)
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
        add_config_argument(command)
        command.add_argument("--agency", required=True, help="agency id stamped on every event")
        command.add_argument("--agency-name")
        command.add_argument("--timezone", default="UTC")


def run(args: argparse.Namespace) -> int:
    zone = require_zone(args.timezone)
    if args.collector == "syslog":
        if not (args.udp or args.tcp or args.tls):
            raise UsageError("give at least one of --udp, --tcp, --tls")
        if args.tls and not (args.tls_cert and args.tls_key):
            raise UsageError("--tls needs --tls-cert and --tls-key")

    from socpipe.collectors.parsers import ParseContext

    config = load_config(args)
    # With per-agency topics, the collector writes its agency's topic (checking the id).
    kafka = config.kafka.for_collector(args.agency)
    context = ParseContext(args.agency, args.agency_name, zone)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    if args.collector == "file":
        from socpipe.collectors.follow import FileFollower
        from socpipe.collectors.publisher import EventPublisher

        publisher = EventPublisher(kafka, args.collector)
        FileFollower(args.glob, args.state, publisher, context).run(stop)
        publisher.close()
        return 0

    from socpipe.collectors.publisher import SpooledPublisher
    from socpipe.collectors.spool import DiskSpool
    from socpipe.collectors.syslog_listener import SyslogListener, SyslogReceiver, tls_context

    spool = DiskSpool(args.spool, args.spool_max_bytes)
    listener = SyslogListener(SyslogReceiver(SpooledPublisher(kafka, "syslog", spool), context))
    for address in args.udp:
        print(f"syslog udp on {listener.add_udp(address)}", file=sys.stderr)
    for address in args.tcp:
        print(f"syslog tcp on {listener.add_tcp(address)}", file=sys.stderr)
    if args.tls:
        tls = tls_context(args.tls_cert, args.tls_key, args.tls_client_ca)
        for address in args.tls:
            print(f"syslog tls on {listener.add_tcp(address, tls)}", file=sys.stderr)
    listener.run(stop)
    return 0

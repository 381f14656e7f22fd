"""``socpipe collect file|syslog``: agency collectors publishing events to Kafka.

Both start and keep running while Kafka is away (the followed files and the syslog journal
hold what waits for it), serve ``/metrics`` when a port is given, and apply the bounds of
the configuration's ``collectors`` section (docs/limits.md).
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from datetime import timedelta
from pathlib import Path

from socpipe.commands.common import add_config_argument, collector_zone, load_config
from socpipe.core.errors import UsageError

NAME = "collect"
HELP = "collect agency logs into Kafka"

log = logging.getLogger(__name__)


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
        command.add_argument(
            "--timezone",
            help="zone of times written without an offset (default: read as UTC, with a"
            " warning for each source that has such times)",
        )
        command.add_argument(
            "--metrics-port",
            type=int,
            help="serve Prometheus metrics on 127.0.0.1:PORT (default: the config's metrics.port)",
        )


def run(args: argparse.Namespace) -> int:
    zone = collector_zone(args.timezone, f"collect {args.collector}")
    if args.collector == "syslog":
        if not (args.udp or args.tcp or args.tls):
            raise UsageError("give at least one of --udp, --tcp, --tls")
        if args.tls and not (args.tls_cert and args.tls_key):
            raise UsageError("--tls needs --tls-cert and --tls-key")
    if args.metrics_port is not None and not 0 <= args.metrics_port <= 65535:
        raise UsageError("--metrics-port must be a port number (0: none)")

    from socpipe.collectors.parsers import ParseContext
    from socpipe.collectors.timestamps import TimeWindow
    from socpipe.core import heap, metrics

    config = load_config(args)
    # With per-agency topics, the collector writes its agency's topic (checking the id).
    kafka = config.kafka.for_collector(args.agency)
    limits = config.collectors
    window = TimeWindow(
        timedelta(seconds=limits.max_future_secs) if limits.max_future_secs else None,
        timedelta(seconds=limits.max_past_secs) if limits.max_past_secs else None,
    )
    context = ParseContext(args.agency, args.agency_name, zone)
    port = config.metrics.port if args.metrics_port is None else args.metrics_port
    metrics.serve(port)
    if port:
        log.info("metrics on http://127.0.0.1:%d/metrics", port)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    if args.collector == "file":
        from socpipe.collectors.follow import FileFollower
        from socpipe.collectors.publisher import EventPublisher

        publisher = EventPublisher(kafka, args.collector)
        follower = FileFollower(
            args.glob,
            args.state,
            publisher,
            context,
            max_line_bytes=limits.max_line_bytes,
            window=window,
        )
        heap.settle_after_startup()
        follower.run(stop)
        publisher.close()
        return 0

    from socpipe.collectors.publisher import SpooledPublisher
    from socpipe.collectors.spool import DiskSpool
    from socpipe.collectors.syslog_listener import SyslogListener, SyslogReceiver, tls_context

    spool = DiskSpool(args.spool, args.spool_max_bytes)
    receiver = SyslogReceiver(
        SpooledPublisher(kafka, "syslog", spool),
        context,
        limits=limits.syslog,
        window=window,
    )
    listener = SyslogListener(receiver)
    for address in args.udp:
        log.info("syslog udp on %s", listener.add_udp(address))
    for address in args.tcp:
        log.info("syslog tcp on %s", listener.add_tcp(address))
    if args.tls:
        tls = tls_context(args.tls_cert, args.tls_key, args.tls_client_ca)
        for address in args.tls:
            log.info("syslog tls on %s", listener.add_tcp(address, tls))
    heap.settle_after_startup()
    listener.run(stop)
    return 0

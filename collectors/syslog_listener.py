"""Syslog receivers: UDP, TCP and TLS (RFC 6587 newline or octet-counting framing).

Each message is parsed like a log line and published; the agency is the listener's, from its
configuration, never from the message.
"""

from __future__ import annotations

import logging
import socketserver
import ssl
import threading
import uuid
from collections.abc import Iterator
from typing import BinaryIO, cast

from socpipe.collectors.lines import DEFAULT_MAX_LINE_BYTES, decode_line
from socpipe.collectors.live_context import Clock, LiveContext, wall_clock
from socpipe.collectors.parsers import ParseContext, parse_detected
from socpipe.collectors.publisher import SpooledPublisher
from socpipe.core.errors import UsageError

log = logging.getLogger(__name__)


def read_frames(stream: BinaryIO, max_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Iterator[bytes]:
    """Messages of a TCP syslog stream; each frame may use either framing (RFC 6587)."""
    while True:
        first = stream.read(1)
        if not first:
            return
        if first.isdigit():
            header = first
            while (char := stream.read(1)).isdigit() and len(header) < 10:
                header += char
            if char == b" ":
                length = int(header)
                message = stream.read(min(length, max_bytes))
                if length > max_bytes:
                    stream.read(length - max_bytes)
                yield message
                continue
            # Not an octet count after all: a plain line that starts with digits.
            rest = stream.readline(max_bytes)
            yield (header + char + rest).rstrip(b"\r\n")
            continue
        line = first + stream.readline(max_bytes)
        yield line.rstrip(b"\r\n")


class SyslogReceiver:
    """Shared handling of received messages."""

    def __init__(
        self, publisher: SpooledPublisher, context: ParseContext, clock: Clock = wall_clock
    ) -> None:
        self.publisher = publisher
        self.context = LiveContext(context, clock)

    def receive(self, raw: bytes, peer: str) -> None:
        text, _valid = decode_line(raw)
        if not text.strip():
            return
        event, _parser = parse_detected(text, self.context.now())
        event["log.source.address"] = peer
        # A stream has no position to derive an id from; the id is fixed here, at collection,
        # and travels with the record, so every replay downstream reuses it.
        event["event.id"] = uuid.uuid4().hex
        self.publisher.publish(event)


def _tcp_handler(receiver: SyslogReceiver) -> type[socketserver.StreamRequestHandler]:
    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            peer = self.client_address[0]
            try:
                for frame in read_frames(cast(BinaryIO, self.rfile)):
                    receiver.receive(frame, peer)
            except (OSError, ssl.SSLError) as error:
                log.warning("syslog connection error peer=%s reason=%s", peer, error)

    return Handler


def _udp_handler(receiver: SyslogReceiver) -> type[socketserver.BaseRequestHandler]:
    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            data = self.request[0]
            receiver.receive(data.rstrip(b"\r\n\x00"), self.client_address[0])

    return Handler


class _TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class _TlsServer(_TcpServer):
    def __init__(self, address: tuple[str, int], handler: type, context: ssl.SSLContext) -> None:
        super().__init__(address, handler)
        self.tls = context

    def get_request(self):  # type: ignore[no-untyped-def]
        connection, address = super().get_request()
        return self.tls.wrap_socket(connection, server_side=True), address


class _UdpServer(socketserver.ThreadingUDPServer):
    daemon_threads = True
    allow_reuse_address = True


def tls_context(certfile: str, keyfile: str, client_ca: str | None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile, keyfile)
    if client_ca:  # mutual TLS: only agencies holding a certificate from this CA may send
        context.load_verify_locations(client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def parse_address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


class SyslogListener:
    """Runs the configured servers in threads while the journal drains to Kafka."""

    def __init__(self, receiver: SyslogReceiver) -> None:
        self.receiver = receiver
        self.servers: list[socketserver.BaseServer] = []

    def add_tcp(self, address: str, tls: ssl.SSLContext | None = None) -> tuple[str, int]:
        handler = _tcp_handler(self.receiver)
        server = (
            _TlsServer(parse_address(address), handler, tls)
            if tls
            else _TcpServer(parse_address(address), handler)
        )
        self.servers.append(server)
        host, port = server.server_address[:2]
        return str(host), int(port)

    def add_udp(self, address: str) -> tuple[str, int]:
        server = _UdpServer(parse_address(address), _udp_handler(self.receiver))
        self.servers.append(server)
        host, port = server.server_address[:2]
        return str(host), int(port)

    def run(self, stop: threading.Event) -> None:
        """Serve until ``stop``; the journal is drained to Kafka all along (and kept if not)."""
        threads = [
            threading.Thread(target=server.serve_forever, daemon=True) for server in self.servers
        ]
        for thread in threads:
            thread.start()
        try:
            self.receiver.publisher.drain(stop)
        finally:
            for server in self.servers:
                server.shutdown()
                server.server_close()
            self.receiver.publisher.close()

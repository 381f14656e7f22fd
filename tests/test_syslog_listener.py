"""Syslog stream framing (RFC 6587) and listener addresses."""

from __future__ import annotations

import io
import socket
import ssl
import threading
import time
from pathlib import Path

import pytest

from socpipe.collectors.parsers import ParseContext
from socpipe.collectors.syslog_listener import (
    SyslogListener,
    SyslogReceiver,
    parse_address,
    read_frames,
    tls_context,
)
from socpipe.core.errors import UsageError
from tests.certificates import Certificates


def test_newline_and_octet_counted_frames_mix() -> None:
    stream = io.BytesIO(
        b"<13>first line\n11 <13>counted<13>after\r\n2026-03-03 starts with digits\n"
    )
    assert list(read_frames(stream)) == [
        b"<13>first line",
        b"<13>counted",
        b"<13>after",
        b"2026-03-03 starts with digits",
    ]


def test_octet_count_may_contain_newlines_and_is_capped() -> None:
    assert list(read_frames(io.BytesIO(b"9 a\nb\nc\nde"))) == [b"a\nb\nc\nde"]
    frames = list(read_frames(io.BytesIO(b"20 " + b"x" * 20 + b"next\n"), max_bytes=5))
    assert frames == [b"xxxxx", b"next"]


def test_truncated_stream_ends_cleanly() -> None:
    assert list(read_frames(io.BytesIO(b"50 short"))) == [b"short"]
    assert list(read_frames(io.BytesIO(b""))) == []


def test_addresses() -> None:
    assert parse_address("127.0.0.1:5514") == ("127.0.0.1", 5514)
    assert parse_address("[::1]:514") == ("[::1]", 514)
    with pytest.raises(UsageError, match="HOST:PORT"):
        parse_address("5514")


class _Collected:
    """Stands in for the Kafka publisher: this test is about the TLS listener alone."""

    def __init__(self) -> None:
        self.events: list[dict] = []

    def publish(self, event: dict) -> None:
        self.events.append(event)

    def drain(self, stop: threading.Event) -> None:
        stop.wait()

    def close(self) -> None:
        pass


def test_tls_listener_with_client_certificates(tmp_path: Path) -> None:
    certificates = Certificates(tmp_path)
    collected = _Collected()
    listener = SyslogListener(SyslogReceiver(collected, ParseContext(agency_id="so-tttt")))  # type: ignore[arg-type]
    context = tls_context(
        certificates.path("server.pem"),
        certificates.path("server.key"),
        certificates.path("ca.pem"),
    )
    host, port = listener.add_tcp("127.0.0.1:0", context)
    stop = threading.Event()
    thread = threading.Thread(target=listener.run, args=(stop,))
    thread.start()
    try:
        client = ssl.create_default_context(cafile=certificates.path("ca.pem"))
        client.load_cert_chain(certificates.path("client.pem"), certificates.path("client.key"))
        message = b"<38>Mar  3 10:05:44 web01 sshd[1]: Accepted password for root from 203.0.113.5 port 22 ssh2"
        with (
            socket.create_connection((host, port)) as raw,
            client.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            tls.sendall(str(len(message)).encode() + b" " + message)
        # Without a client certificate the server refuses the connection (during the handshake
        # with TLS 1.2, at the first read with TLS 1.3).
        anonymous = ssl.create_default_context(cafile=certificates.path("ca.pem"))
        with (
            pytest.raises((ssl.SSLError, ConnectionError)),
            socket.create_connection((host, port)) as raw,
            anonymous.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            tls.sendall(b"<38>Mar  3 10:05:45 web01 sshd[1]: refused\n")
            tls.recv(1)
        deadline = time.monotonic() + 10
        while not collected.events and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert len(collected.events) == 1
    event = collected.events[0]
    assert (event["user.name"], event["organization.id"], event["log.source.address"]) == (
        "root",
        "so-tttt",
        "127.0.0.1",
    )
    assert event["event.id"]

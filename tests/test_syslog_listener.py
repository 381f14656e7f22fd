"""The syslog listener: RFC 6587 framing under any cut of any input, and the bounds a sender
meets over real sockets (frame size, connections, silence, TLS handshakes, a journal that
cannot take messages)."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socpipe.collectors.parsers import ParseContext
from socpipe.collectors.parsers.audit_join import IDLE_SECS
from socpipe.collectors.spool import JournalFull
from socpipe.collectors.syslog_framing import Frame, SyslogFramer
from socpipe.collectors.syslog_listener import (
    SyslogListener,
    SyslogReceiver,
    parse_address,
    tls_context,
)
from socpipe.core import metrics
from socpipe.core.config import SyslogListenerConfig
from socpipe.core.errors import UsageError
from socpipe.core.event import Event
from tests.audit_records import call
from tests.certificates import Certificates
from tests.conftest import RecordingPublisher

SSHD = b"<38>Mar  3 10:05:44 web01 sshd[1]: Failed password for root from 203.0.113.5 port 22 ssh2"
FORGED = (
    b"<38>Mar  3 10:05:45 web01 sshd[1]: Accepted password for root from 203.0.113.66 port 2 ssh2"
)
CONTEXT = ParseContext(agency_id="so-tttt")
RECEIVED = datetime(2026, 3, 10, tzinfo=UTC)


def frames(data: bytes, cap: int = 1024, cuts: list[int] | None = None) -> list[Frame]:
    """The frames of ``data`` arriving cut at ``cuts``, then the stream ending."""
    framer = SyslogFramer(cap)
    found: list[Frame] = []
    previous = 0
    for cut in [*sorted(cuts or []), len(data)]:
        found.extend(framer.feed(data[previous:cut]))
        assert framer.buffered_bytes <= cap + 10
        previous = cut
    last = framer.finish()
    return [*found, *([last] if last else [])]


def test_newline_and_octet_counted_frames_mix() -> None:
    data = b"<13>first line\n11 <13>counted<13>after\r\n2026-03-03 starts with digits\n"
    assert frames(data) == [
        Frame(b"<13>first line", False),
        Frame(b"<13>counted", False),
        Frame(b"<13>after", False),
        Frame(b"2026-03-03 starts with digits", False),
    ]


def test_an_octet_count_may_contain_newlines() -> None:
    assert frames(b"8 a\nb\nc\nde") == [Frame(b"a\nb\nc\nde", False)]


def test_eleven_digits_are_not_a_count_but_a_line() -> None:
    assert frames(b"12345678901 x\n") == [Frame(b"12345678901 x", False)]


def test_an_over_long_octet_counted_frame_keeps_its_head_marked_and_its_tail_is_no_frame() -> None:
    data = b"2000 " + SSHD + b" " + b"P" * (2000 - len(SSHD) - 1 - len(FORGED)) + FORGED
    data += b"%d " % len(SSHD) + SSHD
    assert frames(data, cap=1024) == [Frame(data[5:1029], True), Frame(SSHD, False)]


def test_an_over_long_line_keeps_its_head_marked_and_its_tail_is_no_frame() -> None:
    data = SSHD + b" " + b"P" * 3000 + FORGED + b"\n" + SSHD + b"\n"
    assert frames(data, cap=1024) == [Frame(data[:1024], True), Frame(SSHD, False)]


def test_a_stream_that_ends_inside_a_counted_frame_gives_it_marked_truncated() -> None:
    assert frames(b"50 short") == [Frame(b"short", True)]
    assert frames(b"last line without newline") == [Frame(b"last line without newline", False)]
    assert frames(b"") == []


_PIECES = [b"a", b"12", b"3 ", b"\n", b"\r\n", b" ", b"0 ", b"x" * 30, b"99999999999", b"5 abcde"]


@settings(max_examples=300, deadline=None)
@given(
    data=st.lists(st.sampled_from(_PIECES), max_size=30).map(b"".join),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8),
    cap=st.integers(min_value=1, max_value=40),
)
def test_frames_do_not_depend_on_how_the_stream_is_cut(
    data: bytes, cuts: list[int], cap: int
) -> None:
    whole = frames(data, cap)
    assert frames(data, cap, [min(cut, len(data)) for cut in cuts]) == whole
    assert frames(data, cap, list(range(len(data)))) == whole  # byte by byte
    assert all(len(frame.data) <= cap for frame in whole)


def test_memory_does_not_grow_with_what_an_octet_count_announces() -> None:
    framer = SyslogFramer(64 * 1024)
    assert framer.feed(b"9999999999 ") == []
    found = []
    for _ in range(64):  # 64 MiB of one announced frame
        found.extend(framer.feed(b"x" * (1 << 20)))
        assert framer.buffered_bytes <= 64 * 1024
    assert found == [Frame(b"x" * 64 * 1024, True)]


def test_addresses() -> None:
    assert parse_address("127.0.0.1:5514") == ("127.0.0.1", 5514)
    assert parse_address("[::1]:514") == ("[::1]", 514)
    with pytest.raises(UsageError, match="HOST:PORT"):
        parse_address("5514")


class Collected(RecordingPublisher):
    """Stands in for the journal and Kafka: these tests are about the listener. ``refuse``
    makes publishing fail as a full journal does."""

    def __init__(self) -> None:
        super().__init__()
        self.refuse = False

    def publish(self, event: Event) -> None:
        if self.refuse:
            raise JournalFull("journal full (test)", "spool")
        super().publish(event)

    def drain(self, stop: threading.Event) -> None:
        stop.wait()

    def close(self) -> None:
        pass

    def originals(self) -> list[str]:
        return [event["event.original"] for event in list(self.events)]


def receiver(
    collected: Collected,
    limits: SyslogListenerConfig | None = None,
    ticks: Callable[[], float] = time.monotonic,
) -> SyslogReceiver:
    """A receiver whose clock says the messages arrive a week after they were written."""
    return SyslogReceiver(collected, CONTEXT, lambda: RECEIVED, limits, ticks=ticks)  # type: ignore[arg-type]


def wait_for(check: Callable[[], object], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


@contextmanager
def serving(
    limits: SyslogListenerConfig | None = None,
    tls: ssl.SSLContext | None = None,
    ticks: Callable[[], float] = time.monotonic,
) -> Iterator[tuple[Collected, tuple[str, int], SyslogListener]]:
    collected = Collected()
    listener = SyslogListener(receiver(collected, limits, ticks))
    address = listener.add_tcp("127.0.0.1:0", tls)
    stop = threading.Event()
    thread = threading.Thread(target=listener.run, args=(stop,))
    thread.start()
    try:
        yield collected, address, listener
    finally:
        stop.set()
        thread.join(timeout=30)
        assert not thread.is_alive()


def closed_by_server(connection: socket.socket, timeout: float = 20.0) -> bool:
    """Whether the server closed ``connection`` (read end of stream or reset in time)."""
    connection.settimeout(timeout)
    try:
        return connection.recv(1) == b""
    except (ConnectionResetError, ssl.SSLError):
        return True
    except TimeoutError:
        return False


def test_over_long_messages_over_tcp_are_marked_and_their_tails_never_become_events() -> None:
    limits = SyslogListenerConfig(max_frame_bytes=1024)
    with serving(limits) as (collected, address, _), socket.create_connection(address) as client:
        padding = b" " + b"P" * 3000
        counted = SSHD + padding + FORGED
        client.sendall(SSHD + padding + FORGED + b"\n" + SSHD + b"\n")
        client.sendall(b"%d " % len(counted) + counted + b"%d " % len(SSHD) + SSHD)
        wait_for(lambda: len(collected.events) >= 4, "four messages")
    events = collected.events
    assert [event.get("tags", []) for event in events] == [
        ["socpipe_truncated"],
        [],
        ["socpipe_truncated"],
        [],
    ]
    assert events[0]["event.original"] == (SSHD + padding)[:1024].decode()
    assert not any("203.0.113.66" in event["event.original"] for event in events)
    assert all(event["organization.id"] == "so-tttt" for event in events)


def test_an_announced_gigantic_frame_reserves_nothing() -> None:
    """A client announcing 9,999,999,999 octets and sending 8 MiB: the listener holds at
    most one frame cap, whatever it is told."""
    limits = SyslogListenerConfig(max_frame_bytes=64 * 1024)
    tracemalloc.start()
    try:
        with (
            serving(limits) as (collected, address, _),
            socket.create_connection(address) as client,
        ):
            tracemalloc.reset_peak()
            client.sendall(b"9999999999 " + SSHD)
            for _ in range(8):
                client.sendall(b"x" * (1 << 20))
            wait_for(lambda: collected.events, "the truncated message")
            peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert collected.events[0]["tags"] == ["socpipe_truncated"]
    assert collected.events[0]["event.original"].startswith(SSHD.decode())
    assert peak < 16 << 20, f"peak {peak} bytes traced while receiving"


def test_idle_connections_cost_no_thread_and_do_not_hold_up_the_others() -> None:
    with serving(SyslogListenerConfig(max_connections_per_peer=500)) as (collected, address, _):
        with socket.create_connection(address) as first:
            first.sendall(SSHD + b"\n")
            wait_for(lambda: collected.events, "the listener to serve")
        before = threading.active_count()
        idle = [socket.create_connection(address) for _ in range(200)]
        try:
            with socket.create_connection(address) as client:
                client.sendall(SSHD + b"\n")
                wait_for(lambda: len(collected.events) == 2, "a message beside 200 idle ones")
            assert threading.active_count() == before
        finally:
            for connection in idle:
                connection.close()


def test_a_silent_tls_client_neither_blocks_others_nor_stays_past_the_handshake_timeout(
    tmp_path: Path,
) -> None:
    certificates = Certificates(tmp_path)
    server = tls_context(certificates.path("server.pem"), certificates.path("server.key"), None)
    limits = SyslogListenerConfig(tls_handshake_timeout_secs=1.0)
    timeouts = metrics.CONNECTIONS_CLOSED.labels
    with serving(limits, server) as (collected, address, _):
        before = timeouts(f"tls:{address[0]}:{address[1]}", "tls_handshake_timeout")._value.get()
        with socket.create_connection(address) as silent:
            client = ssl.create_default_context(cafile=certificates.path("ca.pem"))
            with (
                socket.create_connection(address) as raw,
                client.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
            ):
                tls.sendall(SSHD + b"\n")
                wait_for(lambda: collected.events, "the second client's message")
            assert closed_by_server(silent), "the silent client was never disconnected"
        counted = timeouts(f"tls:{address[0]}:{address[1]}", "tls_handshake_timeout")
        wait_for(lambda: counted._value.get() == before + 1, "the timeout to be counted")
    assert collected.originals() == [SSHD.decode()]


def test_tls_listener_with_client_certificates(tmp_path: Path) -> None:
    certificates = Certificates(tmp_path)
    context = tls_context(
        certificates.path("server.pem"),
        certificates.path("server.key"),
        certificates.path("ca.pem"),
    )
    with serving(tls=context) as (collected, address, _):
        client = ssl.create_default_context(cafile=certificates.path("ca.pem"))
        client.load_cert_chain(certificates.path("client.pem"), certificates.path("client.key"))
        message = SSHD.replace(b"Failed", b"Accepted")
        with (
            socket.create_connection(address) as raw,
            client.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            tls.sendall(str(len(message)).encode() + b" " + message)
        # Without a client certificate the server refuses the connection (during the handshake
        # with TLS 1.2, at the first read with TLS 1.3).
        anonymous = ssl.create_default_context(cafile=certificates.path("ca.pem"))
        try:
            with (
                socket.create_connection(address) as raw,
                anonymous.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
            ):
                tls.sendall(SSHD + b"\n")
                assert closed_by_server(tls)
        except (ssl.SSLError, ConnectionError):
            pass  # refused during the handshake
        wait_for(lambda: collected.events, "the message of the client with a certificate")
    assert len(collected.events) == 1
    event = collected.events[0]
    assert (event["user.name"], event["organization.id"], event["log.source.address"]) == (
        "root",
        "so-tttt",
        "127.0.0.1",
    )
    assert event["event.id"]


def test_connections_over_the_caps_are_closed_at_once() -> None:
    limits = SyslogListenerConfig(max_connections=8, max_connections_per_peer=5)
    with serving(limits) as (collected, address, _):
        name = f"tcp:{address[0]}:{address[1]}"
        refused = metrics.CONNECTIONS_REFUSED.labels(name, "max_connections_per_peer")
        kept = [socket.create_connection(address) for _ in range(5)]
        extra = socket.create_connection(address)
        try:
            assert closed_by_server(extra)
            assert refused._value.get() == 1
            # The admitted ones are served.
            kept[0].sendall(SSHD + b"\n")
            wait_for(lambda: collected.events, "a message on an admitted connection")
            assert metrics.CONNECTIONS.labels(name)._value.get() == 5
        finally:
            extra.close()
            for connection in kept:
                connection.close()
        wait_for(lambda: metrics.CONNECTIONS.labels(name)._value.get() == 0, "connections to end")


def test_the_listener_cap_counts_every_peer() -> None:
    limits = SyslogListenerConfig(max_connections=3)
    with serving(limits) as (_collected, address, _):
        name = f"tcp:{address[0]}:{address[1]}"
        kept = [socket.create_connection(address) for _ in range(3)]
        try:
            extra = socket.create_connection(address)
            assert closed_by_server(extra)
            extra.close()
            assert metrics.CONNECTIONS_REFUSED.labels(name, "max_connections")._value.get() == 1
        finally:
            for connection in kept:
                connection.close()


def test_a_silent_connection_is_closed_after_the_idle_timeout() -> None:
    limits = SyslogListenerConfig(idle_timeout_secs=0.5)
    with serving(limits) as (collected, address, _), socket.create_connection(address) as client:
        client.sendall(SSHD + b"\n")
        wait_for(lambda: collected.events, "the first message")
        assert closed_by_server(client)


def test_the_listen_backlog_is_the_configured_one() -> None:
    limits = SyslogListenerConfig(listen_backlog=77)
    with serving(limits) as (_collected, address, _):
        shown = subprocess.run(
            ["ss", "-Hltn", f"sport = :{address[1]}"], capture_output=True, text=True, check=True
        ).stdout.split()
    # ss shows a listening socket's backlog in its Send-Q column.
    assert shown[0] == "LISTEN" and shown[2] == "77"


def test_messages_the_journal_cannot_take_are_held_in_order_and_reading_pauses() -> None:
    with serving() as (collected, address, listener), socket.create_connection(address) as client:
        collected.refuse = True
        client.sendall(b"".join(SSHD + b" %d\n" % n for n in range(50)))
        wait_for(lambda: len(listener.receiver.held) == 50, "50 held messages")
        collected.refuse = False
        wait_for(lambda: len(collected.events) == 50, "the held messages to be journaled")
        client.sendall(SSHD + b" 50\n")
        wait_for(lambda: len(collected.events) == 51, "reading to resume")
    assert collected.originals() == [(SSHD + b" %d" % n).decode() for n in range(51)]


def test_an_audit_start_waits_until_its_host_is_quiet_or_the_listener_stops() -> None:
    moment = [1000.0]  # the receiver's monotonic clock, moved by the test
    syscall, execve, *_rest = (
        f"<14>Mar  3 10:00:00 web01 audispd: {record}".encode()
        for record in call(1201, 9101, 1, "/usr/bin/id", ["id"])
    )
    later = execve.replace(b":1201)", b":1202)")
    with serving(ticks=lambda: moment[0]) as (collected, address, listener):
        with socket.create_connection(address) as client:
            client.sendall(syscall + b"\n" + execve + b"\n")
            wait_for(lambda: len(collected.events) == 1, "the SYSCALL record")
            wait_for(lambda: not listener.receiver.context.join.idle(), "the EXECVE record")
            moment[0] += IDLE_SECS  # web01 says nothing more: the loop's timer lets it go
            wait_for(lambda: len(collected.events) == 2, "the EXECVE record to go")
            client.sendall(later + b"\n")
            wait_for(lambda: not listener.receiver.context.join.idle(), "the next EXECVE")
        assert len(collected.events) == 2
    assert collected.originals() == [syscall.decode(), execve.decode(), later.decode()]


def test_udp_datagrams_beyond_the_held_bound_are_dropped_and_counted() -> None:
    collected = Collected()
    limits = SyslogListenerConfig(max_held_messages=3)
    udp = receiver(collected, limits)
    dropped = metrics.DROPPED.labels("syslog", "journal_unavailable")
    before = dropped._value.get()
    collected.refuse = True
    for number in range(5):
        udp.receive(SSHD + b" %d" % number, "192.0.2.1", droppable=True)
    assert len(udp.held) == 3 and dropped._value.get() == before + 2
    collected.refuse = False
    assert udp.retry_held()
    assert collected.originals() == [(SSHD + b" %d" % n).decode() for n in range(3)]


def test_udp_messages_are_received_capped_and_tagged() -> None:
    collected = Collected()
    limits = SyslogListenerConfig(max_frame_bytes=1024)
    listener = SyslogListener(receiver(collected, limits))
    address = listener.add_udp("127.0.0.1:0")
    stop = threading.Event()
    thread = threading.Thread(target=listener.run, args=(stop,))
    thread.start()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.sendto(SSHD + b"\n", address)
            client.sendto(SSHD + b" " + b"P" * 3000 + FORGED, address)
            client.sendto(SSHD.replace(b"root", b"r\xffot"), address)
            wait_for(lambda: len(collected.events) == 3, "three datagrams")
    finally:
        stop.set()
        thread.join(timeout=30)
    assert [event.get("tags", []) for event in collected.events] == [
        [],
        ["socpipe_truncated"],
        ["socpipe_invalid_utf8"],
    ]
    assert len(collected.events[1]["event.original"]) == 1024


def test_a_port_in_use_is_a_usage_error() -> None:
    first = SyslogListener(receiver(Collected()))  # kept: its socket holds the port
    host, port = first.add_tcp("127.0.0.1:0")
    with pytest.raises(UsageError, match="cannot listen"):
        SyslogListener(receiver(Collected())).add_tcp(f"{host}:{port}")


def test_limits_must_be_sensible() -> None:
    with pytest.raises(Exception, match="max_connections: must be at least 1"):
        replace(SyslogListenerConfig(), max_connections=0)

"""Syslog receivers: UDP, TCP and TLS (RFC 6587 newline or octet-counting framing).

Each message is parsed like a log line and journaled; the agency is the listener's, from its
configuration, never from the message.

One asyncio event loop serves every listener in one thread, so an idle connection costs a
few kilobytes, not a thread. Everything a sender controls is bounded
(``collectors.syslog`` in the configuration, docs/limits.md): the frame size (a longer
message keeps its head and is tagged; its tail is never a message), the connections per
listener and per sending address (more are closed at once), the silence of a connection
(closed after ``idle_timeout_secs``) and the TLS handshake (run beside the other
connections, never in front of them, and cut after ``tls_handshake_timeout_secs``).

When the journal cannot take a message (full, or its disk failing), the message is held here
in order, TCP connections stop being read (senders feel backpressure in their socket
buffers) and the held messages are retried until they are journaled. UDP cannot push back:
datagrams beyond ``max_held_messages`` are dropped, counted and logged.

Audit records arrive in syslog messages too: a process start is held back, with the messages
after it, until its working directory is known (parsers/audit_join.py); a timer on the event
loop releases a start whose host went quiet, and stopping releases the rest.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import ssl
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from socpipe.collectors.live_context import Clock, LiveContext, wall_clock
from socpipe.collectors.parsers import ParseContext
from socpipe.collectors.publisher import SpooledPublisher
from socpipe.collectors.spool import JournalUnavailable
from socpipe.collectors.syslog_framing import SyslogFramer
from socpipe.collectors.throttle import LogThrottle
from socpipe.collectors.timestamps import TimeWindow
from socpipe.core import metrics
from socpipe.core.config import SyslogListenerConfig
from socpipe.core.errors import UsageError
from socpipe.core.event import Event

log = logging.getLogger(__name__)

#: How often held messages are offered to the journal again.
RETRY_SECS = 0.2


class SyslogReceiver:
    """Turns received messages into events and journals them; what the journal cannot take
    yet is held, in order, until it can."""

    def __init__(
        self,
        publisher: SpooledPublisher,
        context: ParseContext,
        clock: Clock = wall_clock,
        limits: SyslogListenerConfig | None = None,
        window: TimeWindow | None = None,
        ticks: Callable[[], float] = time.monotonic,
    ) -> None:
        self.publisher = publisher
        self.limits = limits or SyslogListenerConfig()
        self.context = LiveContext(context, clock, "syslog", window, ticks)
        self.held: deque[Event] = deque()
        self._dropped = metrics.DROPPED.labels("syslog", "journal_unavailable")
        self._throttle = LogThrottle()

    def receive(
        self, raw: bytes, peer: str, truncated: bool = False, droppable: bool = False
    ) -> None:
        """Journal one message from ``peer``. ``truncated``: it was cut at the frame cap.
        ``droppable``: the sender cannot be slowed down (UDP), so when too many messages
        are held already this one is dropped (and counted) rather than held."""
        event = self.context.event(raw, peer)
        if event is None:
            return
        event["log.source.address"] = peer
        # A stream has no position to derive an id from; the id is fixed here, at collection,
        # and travels with the record, so every replay downstream reuses it.
        event["event.id"] = uuid.uuid4().hex
        if truncated:
            self.context.truncated(event, peer, "message", self.limits.max_frame_bytes)
        for ready in self.context.release(event):
            # Messages held for a working directory were accepted already: only this one
            # may be dropped.
            self._journal(ready, droppable and ready is event)

    def expire(self) -> None:
        """Journal the audit process starts whose host went quiet before their directory."""
        for event in self.context.expire():
            self._journal(event, False)

    def finish(self) -> None:
        """Journal everything held for a working directory: the receiver stops."""
        for event in self.context.flush():
            self._journal(event, False)

    def _journal(self, event: Event, droppable: bool) -> None:
        if self.held:
            self._hold(event, droppable)
            return
        try:
            self.publisher.publish(event)
        except JournalUnavailable as error:
            log.warning("syslog: holding messages until the journal takes them: %s", error)
            self._hold(event, droppable)

    def _hold(self, event: Event, droppable: bool) -> None:
        if droppable and len(self.held) >= self.limits.max_held_messages:
            self._dropped.inc()
            if count := self._throttle.due("dropped"):
                log.error(
                    "syslog: UDP datagrams dropped: %d messages wait for the journal already"
                    " dropped=%d",
                    len(self.held),
                    count,
                )
            return
        self.held.append(event)

    def retry_held(self) -> bool:
        """Journal held messages, oldest first, until one is refused; whether none is left."""
        while self.held:
            try:
                self.publisher.publish(self.held[0])
            except JournalUnavailable:
                return False
            self.held.popleft()
        log.warning("syslog: the journal takes messages again; receiving resumes")
        return True


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


def _bind(address: str, kind: socket.SocketKind, backlog: int) -> socket.socket:
    host, port = parse_address(address)
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, kind)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        if kind == socket.SOCK_STREAM:
            sock.listen(backlog)
    except OSError as error:
        sock.close()
        raise UsageError(f"cannot listen on {address}: {error.strerror or error}") from None
    sock.setblocking(False)
    return sock


@dataclass
class _Listener:
    """One bound socket and what its connections share."""

    name: str
    sock: socket.socket
    tls: ssl.SSLContext | None = None
    open: int = 0

    def __post_init__(self) -> None:
        self.per_peer: dict[str, int] = {}
        self.gauge = metrics.CONNECTIONS.labels(self.name)

    def admit(self, peer: str, limits: SyslogListenerConfig) -> str | None:
        """Count a new connection in; the cap it would exceed otherwise."""
        if self.open >= limits.max_connections:
            return "max_connections"
        if self.per_peer.get(peer, 0) >= limits.max_connections_per_peer:
            return "max_connections_per_peer"
        self.open += 1
        self.per_peer[peer] = self.per_peer.get(peer, 0) + 1
        self.gauge.set(self.open)
        return None

    def release(self, peer: str) -> None:
        self.open -= 1
        remaining = self.per_peer[peer] - 1
        if remaining:
            self.per_peer[peer] = remaining
        else:
            del self.per_peer[peer]
        self.gauge.set(self.open)


class _Serving:
    """The state the event loop's callbacks share (all of it lives on the loop's thread)."""

    def __init__(self, receiver: SyslogReceiver, loop: asyncio.AbstractEventLoop) -> None:
        self.receiver = receiver
        self.limits = receiver.limits
        self.loop = loop
        self.paused: set[_StreamConnection] = set()
        self.connections: set[_StreamConnection] = set()
        self.throttle = LogThrottle()
        self._retrying = False
        self._expiring = False

    def receive(self, raw: bytes, peer: str, truncated: bool, droppable: bool = False) -> None:
        self.receiver.receive(raw, peer, truncated, droppable)
        self._schedule()

    def _schedule(self) -> None:
        """Retry the journal while it holds messages back; check on the audit process starts
        that wait for their directory while there are any."""
        if self.receiver.held and not self._retrying:
            self._retrying = True
            self.loop.call_later(RETRY_SECS, self._retry)
        join = self.receiver.context.join
        if not join.idle() and not self._expiring:
            self._expiring = True
            self.loop.call_later(join.idle_secs / 2, self._expire)

    def _expire(self) -> None:
        self._expiring = False
        self.receiver.expire()
        self._schedule()

    def _retry(self) -> None:
        if not self.receiver.retry_held():
            self.loop.call_later(RETRY_SECS, self._retry)
            return
        self._retrying = False
        for connection in list(self.paused):
            connection.resume()
        self.paused.clear()

    def refused(self, listener: _Listener, peer: str, reason: str) -> None:
        metrics.CONNECTIONS_REFUSED.labels(listener.name, reason).inc()
        if count := self.throttle.due(f"{listener.name} {reason} {peer}"):
            log.warning(
                "syslog: connection refused listener=%s peer=%s reason=%s refused=%d",
                listener.name,
                peer,
                reason,
                count,
            )

    def closed(self, listener: _Listener, peer: str, reason: str, detail: object = "") -> None:
        metrics.CONNECTIONS_CLOSED.labels(listener.name, reason).inc()
        if reason != "idle" and (count := self.throttle.due(f"{listener.name} {reason} {peer}")):
            log.warning(
                "syslog: connection closed listener=%s peer=%s reason=%s %s closed=%d",
                listener.name,
                peer,
                reason,
                detail,
                count,
            )


class _StreamConnection(asyncio.Protocol):
    """One TCP or TLS connection: admitted against the caps, upgraded to TLS off the accept
    path with a deadline, framed, and closed when silent too long."""

    def __init__(self, serving: _Serving, listener: _Listener) -> None:
        self.serving = serving
        self.listener = listener
        self.framer = SyslogFramer(serving.limits.max_frame_bytes)
        self.transport: asyncio.Transport | None = None
        self.peer = "-"
        self.admitted = False
        self.last_data = time.monotonic()
        self._idle_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if peer else "-"
        refused = self.listener.admit(self.peer, self.serving.limits)
        if refused is not None:
            self.serving.refused(self.listener, self.peer, refused)
            transport.abort()
            return
        self.admitted = True
        self.transport = transport
        self.serving.connections.add(self)
        self._arm_idle_timer(self.serving.limits.idle_timeout_secs)
        if self.listener.tls is not None:
            # Nothing is read before the upgrade: the client's first bytes are its hello.
            transport.pause_reading()
            self.serving.loop.create_task(self._start_tls(transport, self.listener.tls))

    async def _start_tls(self, transport: asyncio.Transport, context: ssl.SSLContext) -> None:
        try:
            upgraded = await self.serving.loop.start_tls(
                transport,
                self,
                context,
                server_side=True,
                ssl_handshake_timeout=self.serving.limits.tls_handshake_timeout_secs,
            )
        except ConnectionAbortedError as error:  # what asyncio raises at the deadline
            self._give_up(transport, "tls_handshake_timeout", error)
            return
        except (OSError, ValueError) as error:  # ssl.SSLError is an OSError
            self._give_up(transport, "tls_handshake_failed", error)
            return
        if upgraded is None:
            self._give_up(transport, "error", "closed during the TLS handshake")
            return
        self.transport = upgraded  # type: ignore[assignment]
        self.last_data = time.monotonic()

    def _give_up(self, transport: asyncio.Transport, reason: str, detail: object) -> None:
        self.serving.closed(self.listener, self.peer, reason, detail)
        transport.abort()
        self.connection_lost(None)

    def _arm_idle_timer(self, delay: float) -> None:
        self._idle_timer = self.serving.loop.call_later(delay, self._check_idle)

    def _check_idle(self) -> None:
        idle = self.serving.limits.idle_timeout_secs
        silent = time.monotonic() - self.last_data
        if silent < idle or self in self.serving.paused:
            # Not silent, or silent because we stopped reading it.
            self._arm_idle_timer(max(idle - silent, 0.05) if silent < idle else idle)
            return
        self.serving.closed(self.listener, self.peer, "idle")
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        self.last_data = time.monotonic()
        serving = self.serving
        for frame in self.framer.feed(data):
            serving.receive(frame.data, self.peer, frame.truncated)
        if serving.receiver.held and self.transport is not None:
            self.transport.pause_reading()
            serving.paused.add(self)

    def eof_received(self) -> bool:
        last = self.framer.finish()
        if last is not None:
            self.serving.receive(last.data, self.peer, last.truncated)
        return False  # close our side too

    def resume(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.last_data = time.monotonic()
            self.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.admitted:
            return
        self.admitted = False
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        self.listener.release(self.peer)
        self.serving.connections.discard(self)
        self.serving.paused.discard(self)
        # A reset is how many senders hang up (a TLS 1.3 client closing with the session
        # tickets unread); a failed handshake was counted where it failed.
        if exc is not None and not isinstance(exc, (ssl.SSLError, ConnectionResetError)):
            self.serving.closed(self.listener, self.peer, "error", exc)


class _DatagramReceiver(asyncio.DatagramProtocol):
    def __init__(self, serving: _Serving) -> None:
        self.serving = serving

    def datagram_received(self, data: bytes, address: tuple[str | object, ...]) -> None:
        cap = self.serving.limits.max_frame_bytes
        data = data.rstrip(b"\r\n\x00")
        self.serving.receive(data[:cap], str(address[0]), len(data) > cap, droppable=True)


class SyslogListener:
    """Binds the configured sockets, serves them on one event loop in a thread, and drains
    the journal to Kafka on the calling thread until stopped."""

    def __init__(self, receiver: SyslogReceiver) -> None:
        self.receiver = receiver
        self.limits = receiver.limits
        self._listeners: list[_Listener] = []
        self._datagram: list[tuple[str, socket.socket]] = []
        self._failure: BaseException | None = None

    def add_tcp(self, address: str, tls: ssl.SSLContext | None = None) -> tuple[str, int]:
        sock = _bind(address, socket.SOCK_STREAM, self.limits.listen_backlog)
        host, port = sock.getsockname()[:2]
        name = f"{'tls' if tls else 'tcp'}:{host}:{port}"
        self._listeners.append(_Listener(name, sock, tls))
        return str(host), int(port)

    def add_udp(self, address: str) -> tuple[str, int]:
        sock = _bind(address, socket.SOCK_DGRAM, 0)
        host, port = sock.getsockname()[:2]
        self._datagram.append((f"udp:{host}:{port}", sock))
        return str(host), int(port)

    def run(self, stop: threading.Event) -> None:
        """Serve until ``stop``; the journal is drained to Kafka all along (and kept if not)."""
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        halt: list[Callable[[], None]] = []
        thread = threading.Thread(
            target=self._serve, args=(loop, ready, halt), name="syslog-listener", daemon=True
        )
        thread.start()
        ready.wait()
        if self._failure is not None:
            thread.join()
            raise self._failure
        try:
            self.receiver.publisher.drain(stop)
        finally:
            if halt:
                loop.call_soon_threadsafe(halt[0])
            thread.join()
            self.receiver.publisher.close()

    def _serve(
        self,
        loop: asyncio.AbstractEventLoop,
        ready: threading.Event,
        halt: list[Callable[[], None]],
    ) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._main(loop, ready, halt))
        except BaseException as error:  # handed to the thread that called run()
            self._failure = error
            halt.clear()
        finally:
            ready.set()
            loop.close()

    async def _main(
        self,
        loop: asyncio.AbstractEventLoop,
        ready: threading.Event,
        halt: list[Callable[[], None]],
    ) -> None:
        serving = _Serving(self.receiver, loop)
        stopped = asyncio.Event()
        halt.append(stopped.set)
        servers = []
        transports = []
        try:
            for listener in self._listeners:
                servers.append(
                    await loop.create_server(
                        functools.partial(_StreamConnection, serving, listener),
                        sock=listener.sock,
                        backlog=self.limits.listen_backlog,
                    )
                )
            for _name, sock in self._datagram:
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _DatagramReceiver(serving), sock=sock
                )
                transports.append(transport)
        finally:
            ready.set()
        await stopped.wait()
        for server in servers:
            server.close()
        for transport in transports:
            transport.close()
        for connection in list(serving.connections):
            if connection.transport is not None:
                connection.transport.close()
        self.receiver.finish()
        if self.receiver.held and not self.receiver.retry_held():
            log.error(
                "syslog: stopping with %d messages the journal could not take; they are lost",
                len(self.receiver.held),
            )
        for server in servers:
            await server.wait_closed()

"""Syslog over TLS (RFC 5425): CEF lines with octet-counted framing, optionally with mTLS.

Syslog has no application-level acknowledgement: an incident counts as sent (not
acknowledged) once the TLS connection accepted its bytes. A connection that breaks is reopened
and the incident resent (at-least-once; the CEF ``externalId`` is the incident id and the
severity its level, so receivers can drop repeats).
"""

from __future__ import annotations

import socket
import ssl
from typing import Any

from socpipe.core.config import ForwardingConfig, SyslogDestinationConfig
from socpipe.core.errors import ConfigError
from socpipe.forwarding.cef import syslog_frame
from socpipe.forwarding.delivery import TransientError, UnsendableError
from socpipe.forwarding.destinations.base import Destination


class SyslogDestination(Destination):
    kind = "syslog"
    acknowledges = False

    config: SyslogDestinationConfig

    def __init__(self, config: SyslogDestinationConfig, forwarding: ForwardingConfig) -> None:
        super().__init__(config, forwarding)
        host, _, port = str(config.address).rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"destination {config.name!r}: address must be host:port")
        self.host, self.port = host.strip("[]"), int(port)
        self.context = ssl.create_default_context(cafile=config.tls.ca_certs)
        if (cert := self.client_cert()) is not None:
            self.context.load_cert_chain(*cert)
        self.connection: ssl.SSLSocket | None = None
        self.hostname = socket.gethostname()

    def _connect(self) -> ssl.SSLSocket:
        if self.connection is None:
            raw = socket.create_connection((self.host, self.port), self.config.timeout_secs)
            try:
                self.connection = self.context.wrap_socket(raw, server_hostname=self.host)
            except Exception:
                raw.close()
                raise
        return self.connection

    def send(self, incident: dict[str, Any]) -> str:
        try:
            frame = syslog_frame(incident, self.hostname)
        except (KeyError, ValueError, TypeError) as error:
            raise UnsendableError(f"cannot express the incident in CEF: {error!r}") from None
        try:
            self._connect().sendall(frame)
        except (OSError, ssl.SSLError) as error:
            self.close()
            raise TransientError(f"syslog {self.host}:{self.port}: {error}") from None
        return f"{len(frame)} bytes"

    def close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.close()
            finally:
                self.connection = None

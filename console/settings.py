"""The console's settings: the ``console`` section of the configuration, checked and turned
into what the application uses (an address to listen on, a zone, index names)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from socpipe.core.config import Config, ConfigError
from socpipe.sinks.elasticsearch import console_index

DEFAULT_PORT = 8080


@dataclass(frozen=True)
class Indices:
    alerts: str
    events_prefix: str
    #: The forwarding ledger (what each destination did with each incident).
    forwarding: str
    users: str
    sessions: str
    audit: str
    suppressions: str


@dataclass(frozen=True)
class ConsoleSettings:
    host: str
    port: int
    tls_cert: Path | None
    tls_key: Path | None
    zone: ZoneInfo
    session_lifetime_secs: float
    session_idle_secs: float
    login_max_failures: int
    login_window_secs: float
    export_max_rows: int
    indices: Indices

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080`` for IPv6) -> (host, port)."""
    host, colon, port_text = value.rpartition(":")
    if not colon or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigError(f"console.listen: expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port_text)


def console_settings(
    config: Config,
    listen: str | None = None,
    tls_cert: str | None = None,
    tls_key: str | None = None,
) -> ConsoleSettings:
    """Settings from the configuration; command-line values (``listen``, TLS files) win."""
    section = config.console
    host, port = parse_listen(listen or section.listen)
    cert = tls_cert or section.tls_cert
    key = tls_key or section.tls_key
    if bool(cert) != bool(key):
        raise ConfigError("console: TLS needs both a certificate and a key (tls_cert, tls_key)")
    for name, path in (("tls_cert", cert), ("tls_key", key)):
        if path and not Path(path).is_file():
            raise ConfigError(f"console.{name}: no such file: {path}")
    try:
        zone = ZoneInfo(section.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"console.timezone: unknown time zone {section.timezone!r}") from None
    for name in ("session_lifetime_secs", "session_idle_secs", "login_window_secs"):
        if getattr(section, name) < 60:
            raise ConfigError(f"console.{name}: must be at least 60 seconds")
    if section.login_max_failures < 1 or section.export_max_rows < 1:
        raise ConfigError("console: login_max_failures and export_max_rows must be at least 1")
    es = config.elasticsearch
    return ConsoleSettings(
        host=host,
        port=port,
        tls_cert=Path(cert) if cert else None,
        tls_key=Path(key) if key else None,
        zone=zone,
        session_lifetime_secs=section.session_lifetime_secs,
        session_idle_secs=section.session_idle_secs,
        login_max_failures=section.login_max_failures,
        login_window_secs=section.login_window_secs,
        export_max_rows=section.export_max_rows,
        indices=Indices(
            alerts=es.alerts_index,
            events_prefix=es.events_index_prefix,
            forwarding=es.forwarding_index,
            users=console_index(es, "users"),
            sessions=console_index(es, "sessions"),
            audit=console_index(es, "audit"),
            suppressions=console_index(es, "suppressions"),
        ),
    )

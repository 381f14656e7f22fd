"""TLS settings of a destination or feed, in the shape requests wants them."""

from __future__ import annotations

import os

from socpipe.core.config import TlsConfig
from socpipe.core.errors import ConfigError


def tls_verify(tls: TlsConfig, owner: str) -> str | bool:
    """requests' ``verify``: the configured CA file, else the system's trust store."""
    if tls.ca_certs and not os.path.exists(tls.ca_certs):
        raise ConfigError(f"{owner}: CA file {tls.ca_certs} not found")
    return tls.ca_certs or True


def client_cert(tls: TlsConfig) -> tuple[str, str] | None:
    if tls.client_cert and tls.client_key:
        return (tls.client_cert, tls.client_key)
    return None

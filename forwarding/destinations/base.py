"""The destination interface and its registry: one class per way of reaching a receiver."""

from __future__ import annotations

import importlib
import re
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from socpipe.core.config import DestinationBase, ForwardingConfig, TlsConfig, secret_from_env
from socpipe.core.errors import ConfigError
from socpipe.forwarding.tls import client_cert, tls_verify

REGISTRY: dict[str, type[Destination]] = {}
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


def delivery_key(incident: dict[str, Any]) -> str:
    """What identifies one forwarding of an incident: its id and level (an incident is
    forwarded when it opens and again when its level rises, never twice at one level)."""
    return f"{incident['incident.id']}:{incident.get('incident.level', '')}"


class Destination(ABC):
    kind: ClassVar[str]
    #: Whether a successful ``send`` means the receiver confirmed it (the ledger's
    #: ``acknowledged``) or only that the bytes left (``sent``: syslog).
    acknowledges: ClassVar[bool] = True

    def __init__(self, config: DestinationBase, forwarding: ForwardingConfig) -> None:
        self.config = config
        self.forwarding = forwarding

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        REGISTRY[cls.kind] = cls

    @abstractmethod
    def send(self, incident: dict[str, Any]) -> str:
        """Deliver one minimised incident document; return a short receipt for the ledger.

        Raise TransientError when it may work later, PermanentError when the receiver refused
        it for good, UnsendableError when it cannot be expressed for this receiver.
        """

    @abstractmethod
    def close(self) -> None:
        """Release the destination's connections."""

    def secret(self, variable: str | None) -> str | None:
        return secret_from_env(variable) if variable else None

    def client_cert(self) -> tuple[str, str] | None:
        return client_cert(self.tls)

    def verify(self) -> str | bool:
        return tls_verify(self.tls, f"destination {self.config.name!r}")

    @property
    def tls(self) -> TlsConfig:
        return getattr(self.config, "tls", None) or TlsConfig()


def build_destination(config: DestinationBase, forwarding: ForwardingConfig) -> Destination:
    # Importing the package registers every destination class.
    importlib.import_module("socpipe.forwarding.destinations")

    if not NAME.fullmatch(config.name):
        raise ConfigError(
            f"destination name {config.name!r} must be letters, digits, '.', '_' or '-'"
            " (it names a consumer group, a status file and a metric label)"
        )
    kind = REGISTRY.get(config.type)
    if kind is None:
        raise ConfigError(
            f"destination {config.name!r}: type must be one of {', '.join(sorted(REGISTRY))},"
            f" not {config.type!r}"
        )
    return kind(config, forwarding)

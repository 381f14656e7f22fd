"""A remote Kafka cluster (e.g. the national center's), over TLS and/or SASL."""

from __future__ import annotations

from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from socpipe.core import jsontext
from socpipe.core.config import ForwardingConfig, KafkaDestinationConfig
from socpipe.forwarding.delivery import TransientError
from socpipe.forwarding.destinations.base import Destination


class KafkaDestination(Destination):
    kind = "kafka"

    config: KafkaDestinationConfig

    def __init__(self, config: KafkaDestinationConfig, forwarding: ForwardingConfig) -> None:
        super().__init__(config, forwarding)
        options: dict[str, Any] = {
            "bootstrap_servers": config.bootstrap_servers,
            "security_protocol": config.security_protocol,
            "acks": "all",
            "enable_idempotence": True,
            "max_block_ms": int(config.timeout_secs * 1000),
            "bootstrap_timeout_ms": int(config.timeout_secs * 1000),
            "request_timeout_ms": int(config.timeout_secs * 1000),
        }
        tls = config.tls
        for option, value in (
            ("ssl_cafile", tls.ca_certs),
            ("ssl_certfile", tls.client_cert),
            ("ssl_keyfile", tls.client_key),
            ("sasl_mechanism", config.sasl_mechanism),
            ("sasl_plain_username", self.secret(config.username_env)),
            ("sasl_plain_password", self.secret(config.password_env)),
        ):
            if value:
                options[option] = value
        self.options = options
        self.producer: KafkaProducer | None = None

    def _producer(self) -> KafkaProducer:
        # Connected on first use: a remote cluster that is down when the daemon starts is an
        # outage to retry, not a reason to refuse to start.
        if self.producer is None:
            self.producer = KafkaProducer(**self.options)
        return self.producer

    def send(self, incident: dict[str, Any]) -> str:
        value = jsontext.dumps(incident)  # strict: NaN as null, lone surrogates escaped
        key = str(incident["incident.id"]).encode()
        try:
            metadata = (
                self._producer()
                .send(str(self.config.topic), key=key, value=value)
                .get(timeout=self.config.timeout_secs)
            )
        except KafkaError as error:
            raise TransientError(f"kafka: {error}") from None
        return f"{metadata.topic}[{metadata.partition}]@{metadata.offset}"

    def close(self) -> None:
        if self.producer is not None:
            self.producer.close(timeout=5)
            self.producer = None

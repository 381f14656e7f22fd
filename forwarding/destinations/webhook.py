"""HTTPS webhook: the incident as JSON, with an idempotency key (incident id and level) so a
re-send is recognisable and a more severe update is not."""

from __future__ import annotations

from typing import Any

import requests

from socpipe.core.config import ForwardingConfig, WebhookDestinationConfig
from socpipe.forwarding.destinations.base import Destination, delivery_key
from socpipe.forwarding.http import classify


class WebhookDestination(Destination):
    kind = "webhook"

    config: WebhookDestinationConfig

    def __init__(self, config: WebhookDestinationConfig, forwarding: ForwardingConfig) -> None:
        super().__init__(config, forwarding)
        self.session = requests.Session()
        # Passed with each request: a session-level `verify` loses to REQUESTS_CA_BUNDLE and
        # friends in the environment, and the configured CA must win.
        self.verify_tls = self.verify()
        self.cert = self.client_cert()
        token = self.secret(config.token_env)
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def send(self, incident: dict[str, Any]) -> str:
        def post() -> requests.Response:
            response = self.session.post(
                str(self.config.url),
                json=incident,
                headers={"Idempotency-Key": delivery_key(incident)},
                timeout=self.config.timeout_secs,
                verify=self.verify_tls,
                cert=self.cert,
            )
            if response.status_code != 409:  # 409: the receiver already has this key
                response.raise_for_status()
            return response

        response = classify(post)
        return f"HTTP {response.status_code}"

    def close(self) -> None:
        self.session.close()

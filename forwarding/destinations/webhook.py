"""HTTPS webhook: the alert as JSON, with an idempotency key so a re-send is recognisable."""

from __future__ import annotations

from typing import Any

import requests

from forwarding.destinations.base import Destination
from forwarding.http import classify


class WebhookDestination(Destination):
    kind = "webhook"

    def __init__(self, config: Any, forwarding: Any) -> None:
        super().__init__(config, forwarding)
        self.required("url")
        self.session = requests.Session()
        # Passed with each request: a session-level `verify` loses to REQUESTS_CA_BUNDLE and
        # friends in the environment, and the configured CA must win.
        self.tls_options = {"verify": self.verify(), "cert": self.client_cert()}
        token = self.secret(config.token_env)
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def send(self, alert: dict[str, Any]) -> str:
        def post() -> requests.Response:
            response = self.session.post(
                str(self.config.url),
                json=alert,
                headers={"Idempotency-Key": str(alert["alert.id"])},
                timeout=self.config.timeout_secs,
                **self.tls_options,
            )
            if response.status_code != 409:  # 409: the receiver already has this key
                response.raise_for_status()
            return response

        response = classify(post)
        return f"HTTP {response.status_code}"

    def close(self) -> None:
        self.session.close()

"""HTTP for the destinations and the indicator feed: which failures are worth retrying, and
sessions that keep a timeout and the configured CA."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import requests

from socpipe.forwarding.delivery import PermanentError, TransientError

T = TypeVar("T")
#: HTTP statuses that say "not now" rather than "never".
RETRYABLE_STATUSES = frozenset({408, 425, 429})


def classify(call: Callable[[], T]) -> T:
    """Run an HTTP call; 5xx, 408/425/429 and network failures are transient, other 4xx not."""
    try:
        return call()
    except requests.HTTPError as error:
        response: Any = error.response
        status = response.status_code if response is not None else 0
        body = (response.text[:300] if response is not None else "").replace("\n", " ")
        message = f"HTTP {status}: {body}"
        if status >= 500 or status in RETRYABLE_STATUSES or status == 0:
            raise TransientError(message) from None
        raise PermanentError(message) from None
    except (requests.ConnectionError, requests.Timeout) as error:
        raise TransientError(f"unreachable: {type(error).__name__}: {error}") from None


class SessionSettingsAdapter(requests.adapters.HTTPAdapter):
    """Forces a timeout and the configured CA on every request of a session we do not build
    ourselves (taxii2-client's): taxii2-client sets no timeout, and requests lets
    REQUESTS_CA_BUNDLE in the environment override a session's ``verify``."""

    def __init__(self, timeout: float, verify: str | bool) -> None:
        super().__init__()
        self.timeout = timeout
        self.verify = verify

    def send(self, request: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        if isinstance(self.verify, str):
            kwargs["verify"] = self.verify
        return super().send(request, **kwargs)

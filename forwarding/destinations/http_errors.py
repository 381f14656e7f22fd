"""How an HTTP exchange maps to delivery errors, shared by TAXII and the webhook."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import requests

from forwarding.delivery import PermanentError, TransientError
from forwarding.destinations.base import RETRYABLE_STATUSES

T = TypeVar("T")


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


class TimeoutAdapter(requests.adapters.HTTPAdapter):
    """Gives every request of a session a timeout (taxii2-client sets none; a hung peer must
    not hang the forward stage)."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout

    def send(self, request: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().send(request, **kwargs)

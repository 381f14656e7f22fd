"""Getting one incident to one destination: retries with backoff and jitter, a circuit
breaker, and the line between failures worth retrying and failures that never heal.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from socpipe.core.stage import RetryLater


class DeliveryError(Exception):
    """A send that did not succeed."""


class PermanentError(DeliveryError):
    """The destination refused this incident (e.g. HTTP 400): retrying cannot help;
    dead-letter."""


class UnsendableError(PermanentError):
    """socpipe cannot express this incident for the destination (STIX, CEF): it never left
    the province; dead-letter."""


class TransientError(DeliveryError):
    """The destination is unreachable or overloaded: retry later."""


class DestinationUnavailable(RetryLater):
    """Retries ran out for now (or the breaker is open); the batch is handed back, uncommitted."""


@dataclass
class Backoff:
    """Exponential backoff with full jitter, so many senders do not retry in step."""

    initial: float
    maximum: float
    rng: random.Random

    def delay(self, attempt: int) -> float:
        return self.rng.uniform(0, min(self.maximum, self.initial * 2**attempt))


class CircuitBreaker:
    """Stops calling a destination after ``failures`` transient failures in a row; after
    ``reset_secs`` one trial call is let through (half-open), and a success closes it again."""

    def __init__(
        self, failures: int, reset_secs: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.threshold = failures
        self.reset_secs = reset_secs
        self.clock = clock
        self.failures = 0
        self.opened_at: float | None = None

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half-open" if self.clock() - self.opened_at >= self.reset_secs else "open"

    def allows(self) -> bool:
        return self.state != "open"

    def success(self) -> None:
        self.failures = 0
        self.opened_at = None

    def failure(self) -> None:
        self.failures += 1
        if self.failures >= self.threshold or self.opened_at is not None:
            self.opened_at = self.clock()


def deliver(
    send: Callable[[], Any],
    breaker: CircuitBreaker,
    backoff: Backoff,
    budget_secs: float,
    should_stop: Callable[[], bool],
    on_retry: Callable[[TransientError], None],
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Any] = time.sleep,
) -> Any:
    """Call ``send`` until it succeeds; PermanentError passes through at once.

    Raises DestinationUnavailable when the breaker is open or ``budget_secs`` of retrying is
    used up, and InterruptedError when asked to stop: in both cases nothing is committed and
    the incident is sent again later (which is why every destination gets a stable id).
    """
    deadline = clock() + budget_secs
    attempt = 0
    while True:
        if should_stop():
            raise InterruptedError("stopping while a destination is failing")
        if not breaker.allows():
            raise DestinationUnavailable(f"circuit open after {breaker.failures} failures")
        try:
            result = send()
        except TransientError as error:
            breaker.failure()
            on_retry(error)
            pause = backoff.delay(attempt)
            if clock() + pause > deadline:
                raise DestinationUnavailable(str(error)) from error
            attempt += 1
            sleep(pause)
            continue
        breaker.success()
        return result

"""Progress on stderr for long scans: a redrawn bar on a terminal, periodic lines otherwise."""

from __future__ import annotations

import time
from typing import TextIO


def human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


class Progress:
    """Reports bytes done of total, events and alerts, at most every ``interval`` seconds."""

    def __init__(
        self, stream: TextIO, total_bytes: int, enabled: bool, interval: float | None = None
    ):
        self.stream = stream
        self.total = max(total_bytes, 1)
        self.enabled = enabled
        self.interactive = enabled and stream.isatty()
        self.interval = interval if interval is not None else (0.25 if self.interactive else 30.0)
        self.started = time.monotonic()
        self._last = self.started

    def update(self, done_bytes: int, events: int, alerts: int, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        elapsed = max(now - self.started, 1e-9)
        fraction = min(done_bytes / self.total, 1.0)
        rate = events / elapsed
        text = (
            f"{fraction:6.1%} {human_bytes(done_bytes)}/{human_bytes(self.total)} "
            f"{events:,} events {alerts:,} alerts {rate:,.0f} ev/s"
        )
        if self.interactive:
            width = 24
            filled = int(width * fraction)
            self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {text}\x1b[K")
        else:
            self.stream.write(f"progress: {text}\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.interactive:
            self.stream.write("\n")
            self.stream.flush()

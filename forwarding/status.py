"""What each destination last did, kept on disk for `socpipe forward status`.

The forward stage rewrites a small JSON file per destination after every batch (write to a
temporary file, then rename, so a reader never sees half a file).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class DestinationStatus:
    name: str
    type: str
    last_success: float | None = None
    last_failure: float | None = None
    last_error: str = ""
    breaker: str = "closed"
    sent: int = 0
    failures: int = 0

    def succeeded(self) -> None:
        self.last_success = time.time()
        self.sent += 1

    def failed(self, error: str) -> None:
        self.last_failure = time.time()
        self.last_error = error[:500]
        self.failures += 1


def write_status(directory: str, status: DestinationStatus) -> None:
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{status.name}.json"
    partial = target.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps(asdict(status), indent=2))
    partial.replace(target)


def read_status(directory: str, name: str) -> DestinationStatus | None:
    try:
        document = json.loads((Path(directory) / f"{name}.json").read_text())
    except (OSError, ValueError):
        return None
    return DestinationStatus(**document)

"""Alerts as JSON Lines: the scan's ``--out`` file (or standard output).

One alert per line, strict JSON (socpipe.core.jsontext), flushed line by line so that an
interrupted scan keeps every alert it had found.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

from socpipe.core import jsontext


class JsonLinesWriter:
    """Writes documents to a file (``-``: standard output); a context manager."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._own = str(path) != "-"
        self._handle: BinaryIO = path.open("wb") if self._own else sys.stdout.buffer

    def write(self, document: dict[str, Any]) -> None:
        self._handle.write(jsontext.dumps(document) + b"\n")
        self._handle.flush()

    def close(self) -> None:
        if self._own:
            self._handle.close()

    def __enter__(self) -> JsonLinesWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

"""Rule problems, each knowing the file (and, where known, the line) it came from."""

from __future__ import annotations

import re

from socpipe.core.errors import SocpipeError


class RuleError(SocpipeError):
    """A rule that cannot be used, with the file, the line when known, and the reason.

    ``key`` names the top-level key the problem is about, when known, so the loader that has
    the file's text can find its line.
    """

    def __init__(
        self, source: str, reason: str, line: int | None = None, key: str | None = None
    ) -> None:
        super().__init__(reason, source, line)
        self.key = key


class UnsupportedRuleError(RuleError):
    """A valid rule using a feature socpipe does not implement yet (not a broken rule)."""


def sigma_reason(error: Exception) -> str:
    """pySigma's message without the " in <path>" it appends (the caller names the file)."""
    return re.sub(r" in (?:file )?\S+$", "", str(error)).strip()

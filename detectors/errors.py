"""One error root for rule problems, knowing the file it came from."""

from __future__ import annotations

import re


class RuleError(Exception):
    """A rule that cannot be used, with the file and the reason."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class UnsupportedRuleError(RuleError):
    """A valid rule using a feature socpipe does not implement yet (not a broken rule)."""


def sigma_reason(error: Exception) -> str:
    """pySigma's message without the " in <path>" it appends (the caller names the file)."""
    return re.sub(r" in (?:file )?\S+$", "", str(error)).strip()

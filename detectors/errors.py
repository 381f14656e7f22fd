"""One error root for rule problems, knowing the file it came from."""

from __future__ import annotations


class RuleError(Exception):
    """A rule that cannot be used, with the file and the reason."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class UnsupportedRuleError(RuleError):
    """A valid rule using a feature socpipe does not implement yet (not a broken rule)."""

"""One error root for everything socpipe reports to a person.

Library code raises a ``SocpipeError`` subclass that knows where the problem is (a file, a
line in it, a configuration key path) and why; only the command line turns it into a
message and an exit code. Subclasses say what kind of problem it is, so a caller that can do
something about one kind catches that kind alone.
"""

from __future__ import annotations


class SocpipeError(Exception):
    """A problem a person has to act on: what went wrong, and where.

    ``source`` is the file (or other named input) and ``line`` the 1-based line in it, when
    known; ``reason`` is the message without them. ``str()`` gives ``source: line N: reason``.
    """

    #: Exit status the command line uses for this kind of error (2: the user's input).
    exit_code = 1

    def __init__(self, reason: str, source: str | None = None, line: int | None = None) -> None:
        self.reason = reason
        self.source = source
        self.line = line
        super().__init__(self.describe())

    def describe(self) -> str:
        where = [part for part in (self.source, f"line {self.line}" if self.line else None) if part]
        return ": ".join([*where, self.reason])


class UsageError(SocpipeError):
    """An argument or input path the user gave cannot be used (exit status 2)."""

    exit_code = 2


class ConfigError(SocpipeError):
    """A configuration problem; the reason starts with the key path (``kafka.topics``)."""

    exit_code = 2


class ResourceError(SocpipeError):
    """A file socpipe ships with (rules, field mappings, templates) cannot be found: the
    installation is broken, and running on without it would silently match nothing."""


class DependencyUnavailable(SocpipeError):
    """A service socpipe needs (Kafka, Elasticsearch) cannot be reached or refused us."""

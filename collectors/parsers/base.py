"""The parser contract and the name -> parser registry.

A parser never raises on bad input: it returns ``None`` when a line is not its format, so the
caller can fall through to the next parser and, last, to the generic parser that keeps the
line as it is. Nothing is dropped.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, tzinfo
from typing import Any, ClassVar, Final

from socpipe.collectors.parsers.audit_stream import AuditStream
from socpipe.core.event import Event

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ParseContext:
    """What a parser needs to know that is not in the line itself.

    The agency comes from here (the collector's configuration), never from log content, so a
    compromised host cannot claim to be another agency.
    """

    agency_id: str = "unknown"
    agency_name: str | None = None
    zone: tzinfo = UTC
    reference_time: datetime = field(default_factory=lambda: datetime.now(UTC))
    #: Audit records of one call come as several lines (see audit_stream). Each context made
    #: from scratch starts a stream; contexts derived with ``replace`` share their base's.
    audit: AuditStream = field(default_factory=AuditStream, compare=False, repr=False)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its values, for the child process that parses a scan's EVTX files (the
        compiled frozen class cannot be rebuilt attribute by attribute); the audit stream,
        which only audit lines use, starts afresh there."""
        return (ParseContext, (self.agency_id, self.agency_name, self.zone, self.reference_time))

    def new_stream(self) -> ParseContext:
        """The same context for an unrelated stream of lines (nothing remembered)."""
        return replace(self, audit=AuditStream())

    def stamp(self, event: Event) -> Event:
        """Set the agency fields, overwriting whatever the record claimed."""
        event["organization.id"] = self.agency_id
        if self.agency_name:
            event["organization.name"] = self.agency_name
        else:
            event.pop("organization.name", None)
        return event


class Parser(ABC):
    """One log format."""

    name: ClassVar[str]

    @abstractmethod
    def looks_like(self, line: str) -> bool:
        """A cheap test used by auto-detection; ``parse`` still decides."""

    @abstractmethod
    def parse_line(self, line: str, context: ParseContext) -> Event | None:
        """The format-specific fields for ``line``, or ``None`` when it is not this format."""

    def parse(self, line: str, context: ParseContext) -> Event | None:
        """The event for ``line`` with the agency stamped, or ``None`` if not this format.

        A parser that fails on a line it accepted is a bug, but it must not stop a scan or a
        collector: the line goes on to the next parser (the generic one keeps it), and the
        failure is logged once per parser and error type.
        """
        try:
            event = self.parse_line(line, context)
        except Exception as error:
            _report_failure(self.name, error)
            return None
        return context.stamp(event) if event is not None else None


_REPORTED_FAILURES: set[tuple[str, str]] = set()


def _report_failure(parser: str, error: Exception) -> None:
    kind = type(error).__name__
    if (parser, kind) not in _REPORTED_FAILURES:
        _REPORTED_FAILURES.add((parser, kind))
        log.warning(
            "parser failed, line kept as unparsed parser=%s reason=%s: %s "
            "(further %s failures of this parser not logged)",
            parser,
            kind,
            error,
            kind,
        )


PARSERS: Final[dict[str, Parser]] = {}


def register(parser: Parser) -> None:
    """Add a parser to the registry under its ``name``.

    A call after the class rather than a class decorator: mypyc compiles a decorated class
    as a plain Python class, which may not derive from the compiled ``Parser``.
    """
    PARSERS[parser.name] = parser


def get_parser(name: str) -> Parser:
    try:
        return PARSERS[name]
    except KeyError:
        known = ", ".join(sorted(PARSERS))
        raise ValueError(f"unknown format {name!r}; known formats: {known}") from None


def parse_detected(line: str, context: ParseContext) -> tuple[Event, Parser]:
    """Parse with the first registered parser that accepts the line's shape and content.

    The generic parser is registered last and accepts everything, so this always returns.
    """
    for parser in PARSERS.values():
        if parser.looks_like(line):
            event = parser.parse(line, context)
            if event is not None:
                return event, parser
    raise AssertionError("the generic parser must be registered")

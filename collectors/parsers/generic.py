"""The fallback: a line no parser understands still becomes an event, so nothing is lost."""

from __future__ import annotations

from socpipe.collectors.parsers.base import ParseContext, Parser, register
from socpipe.core.event import Event, new_event


class GenericParser(Parser):
    name = "generic"

    def looks_like(self, line: str) -> bool:
        return True

    def parse_line(self, line: str, context: ParseContext) -> Event:
        event = new_event(line, "generic", "generic.log", context.reference_time)
        event["message"] = line
        # The time is when socpipe read the line: the tag tells analysts not to trust it.
        event["tags"] = ["socpipe_unparsed"]
        return event


register(GenericParser())

"""The fallback: a line no parser understands still becomes an event, so nothing is lost."""

from __future__ import annotations

from collectors.event import Event, new_event
from collectors.parsers.base import ParseContext, Parser, register


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

"""Parsers turn one raw record into a normalized event; each is one class behind a name."""

from socpipe.collectors.parsers.base import (
    PARSERS,
    ParseContext,
    Parser,
    get_parser,
    parse_detected,
)

# Importing the modules registers their parsers; the order here is the auto-detection order:
# unambiguous shapes (JSON, CEF, audit records, RFC 5424) before the looser BSD syslog and
# web-log shapes, and the generic fallback last.
from socpipe.collectors.parsers import jsonlines as _jsonlines  # noqa: F401  isort: skip
from socpipe.collectors.parsers import cef as _cef  # noqa: F401  isort: skip
from socpipe.collectors.parsers import auditd as _auditd  # noqa: F401  isort: skip
from socpipe.collectors.parsers import syslog as _syslog  # noqa: F401  isort: skip
from socpipe.collectors.parsers import web as _web  # noqa: F401  isort: skip
from socpipe.collectors.parsers import generic as _generic  # noqa: F401  isort: skip

__all__ = ["PARSERS", "ParseContext", "Parser", "get_parser", "parse_detected"]

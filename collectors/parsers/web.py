"""Web server logs: access logs in Common/Combined format (nginx, Apache) and Apache error logs.

``url.original`` keeps the request target exactly as sent; the percent-decoded form goes to
``url.decoded`` (a socpipe field) so attack rules can match ``'`` as well as ``%27`` without
ever losing what was on the wire.
"""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import unquote_plus

from socpipe.collectors.parsers.access_line import split_access_line
from socpipe.collectors.parsers.base import ParseContext, Parser, register
from socpipe.collectors.timestamps import clf_to_iso
from socpipe.core.event import Event, new_event, put, put_int

_ERROR = re.compile(
    r"\[(?P<time>[A-Z][a-z]{2} [A-Z][a-z]{2} \d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)? \d{4})\] "
    r"\[(?:(?P<module>[\w-]+):)?(?P<level>\w+)\]"
    r"(?: \[pid (?P<pid>\d+)(?::tid \d+)?\])?"
    r"(?: \[client (?P<client>[0-9A-Fa-f:.]+?)(?::\d+)?\])? ?"
    r"(?P<message>.*)\Z",
    re.DOTALL,
)


def decode_url(target: str) -> str:
    """Percent- and plus-decode twice: attackers double-encode to slip past single decoding."""
    if "%" not in target and "+" not in target:
        return target  # nothing to decode: most requests, and unquote_plus is interpreted
    once = unquote_plus(target)
    return unquote_plus(once) if "%" in once else once


def _put_request(event: Event, request: str) -> None:
    parts = request.split(" ")
    if len(parts) == 3 and parts[2].startswith("HTTP/"):
        method, target, version = parts
        event["http.version"] = version[5:]
    elif len(parts) >= 2:
        method, target = parts[0], " ".join(parts[1:])
    else:
        event["http.request.raw"] = request
        return
    event["http.request.method"] = method
    event["url.original"] = target
    path, _, query = target.partition("?")
    event["url.path"] = path
    put(event, "url.query", query)
    decoded = decode_url(target)
    event["url.decoded"] = decoded
    name = path[path.rfind("/") + 1 :]
    if "." in name:
        put(event, "url.extension", name.rpartition(".")[2].lower())


class AccessLogParser(Parser):
    name = "web_access"

    def looks_like(self, line: str) -> bool:
        return '] "' in line and " [" in line[:120]

    def parse_line(self, line: str, context: ParseContext) -> Event | None:
        fields = split_access_line(line)
        if fields is None:
            return None
        vhost, client, user, stamp, request, status, size, referrer, agent = fields
        moment = clf_to_iso(stamp)
        if moment is None:
            return None
        event = new_event(line, "web", "web.access", moment)
        event["event.category"] = ["web"]
        event["event.type"] = ["access"]
        put(event, "source.ip" if _is_ip(client) else "source.domain", client)
        put(event, "user.name", user)
        if vhost is not None:
            event["url.domain"] = vhost
        _put_request(event, request)
        if status.isdigit():
            code = int(status)
            event["http.response.status_code"] = code
            event["event.outcome"] = "failure" if code >= 400 else "success"
        put_int(event, "http.response.body.bytes", size)
        put(event, "http.request.referrer", referrer)
        put(event, "user_agent.original", agent)
        event["message"] = request
        return event


def _is_ip(text: str) -> bool:
    dotted_quad = text.count(".") == 3 and text.replace(".", "").isdigit()
    return dotted_quad or ":" in text


class ApacheErrorParser(Parser):
    name = "apache_error"

    def looks_like(self, line: str) -> bool:
        return line.startswith("[") and line[1:4].isalpha() and line[4:5] == " "

    def parse_line(self, line: str, context: ParseContext) -> Event | None:
        match = _ERROR.match(line)
        if not match:
            return None
        stamp = match["time"]
        layout = "%a %b %d %H:%M:%S.%f %Y" if "." in stamp else "%a %b %d %H:%M:%S %Y"
        try:
            moment = datetime.strptime(stamp, layout).replace(tzinfo=context.zone)
        except ValueError:
            return None
        event = new_event(line, "apache", "apache.error", moment)
        event["log.level"] = match["level"].lower()
        event["event.category"] = ["web"]
        put(event, "apache.error.module", match["module"])
        put_int(event, "process.pid", match["pid"])
        put(event, "source.ip", match["client"])
        event["message"] = match["message"]
        return event


register(AccessLogParser())
register(ApacheErrorParser())

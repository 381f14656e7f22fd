"""The fuzz targets: each takes the fuzzer's bytes, feeds them where socpipe reads hostile
input, and fails (raises, or the process dies) only on a bug: an exception no caller
expects, a broken invariant, or a native crash.

- ``parsers``: a line through detection and through every parser's own ``parse_line`` (the
  catch-all in ``Parser.parse`` would hide a parser's exception: here it is a bug, since it
  turns a whole line into an unparsed one); the event must be complete, its time in the
  one shape the time window compares, and encodable as strict JSON.
- ``envelope``: a Kafka record through ``unpack`` and ``decode`` (``ValueError`` is the
  documented refusal); what decodes must encode again.
- ``framer``: a TCP stream cut where the fuzzer says, with the cap it says: the frames must
  not depend on the cuts, never exceed the cap, and the framer never hold more than a frame.
- ``rules``: a rule file through ``load_rules`` (problems are collected, never raised); a
  rule that compiles is run on sample events (RE2 included).
- ``evtx``: an EVTX file through the native parser, the Windows mapping and the damage
  accounting.
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from socpipe.collectors.lines import decode_line
from socpipe.collectors.parsers import PARSERS, ParseContext, parse_detected
from socpipe.collectors.parsers.evtx_records import RecordIds, evtx_damage, read_evtx
from socpipe.collectors.syslog_framing import SyslogFramer
from socpipe.core import envelope
from socpipe.core.event import REQUIRED_FIELDS
from socpipe.detectors.event_view import EventView
from socpipe.detectors.rules import load_rules

CONTEXT = ParseContext(agency_id="so-tttt", reference_time=datetime(2026, 3, 10, tzinfo=UTC))
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\Z")
_FOLDER = Path(tempfile.mkdtemp(prefix="socpipe-fuzz-"))
#: Events rules are tried on: a few of every kind.
SAMPLE_EVENTS = [
    parse_detected(line, CONTEXT)[0]
    for line in (
        "<38>Mar  3 10:00:00 web01 sshd[1]: Failed password for root from 203.0.113.5 port 22 ssh2",
        '10.0.0.5 - - [03/Mar/2026:10:15:32 +0700] "GET /a?id=1%27+or+1=1-- HTTP/1.1" 200 5 "-" "sqlmap"',
        "CEF:0|Fortinet|FortiGate|7.2|13|denied|5|src=198.51.100.4 dst=10.0.0.1 dpt=3389 act=deny",
        'type=EXECVE msg=audit(1700000000.1:2): argc=2 a0="curl" a1="http://x/s.sh"',
        '{"winlog": {"channel": "Security", "event_id": 4625, "event_data": {"TargetUserName": "a"}}}',
    )
]


def parsers(data: bytes) -> None:
    line, _valid = decode_line(data)
    for parser in PARSERS.values():
        event = parser.parse_line(line, CONTEXT)  # raises only on a bug
        if event is not None:
            _check_event(event, line)
    event, _parser = parse_detected(line, CONTEXT)
    _check_event(event, line)


def _check_event(event: dict, line: str) -> None:
    missing = [field for field in REQUIRED_FIELDS if field not in event]
    assert not missing, f"event without {missing}"
    assert event["event.original"] == line, "event.original is not the line"
    stamp = event["@timestamp"]
    assert isinstance(stamp, str) and TIMESTAMP.match(stamp), f"bad @timestamp {stamp!r}"
    envelope.decode(envelope.encode(event))  # strict JSON, and readable again


def envelope_target(data: bytes) -> None:
    for _position, line in envelope.unpack(data):
        try:
            document = envelope.decode(line)
        except ValueError:
            continue
        envelope.decode(envelope.encode(document))


def framer(data: bytes) -> None:
    if len(data) < 2:
        return
    cap = 1 + data[0] % 64
    cuts = sorted({byte % (len(data) - 1) for byte in data[1:9]})
    stream = data[9:]
    whole = _frames(stream, cap, [])
    assert _frames(stream, cap, [cut for cut in cuts if cut <= len(stream)]) == whole
    assert all(len(frame.data) <= cap for frame in whole)


def _frames(stream: bytes, cap: int, cuts: list[int]) -> list:
    framer = SyslogFramer(cap)
    frames = []
    previous = 0
    for cut in [*cuts, len(stream)]:
        frames.extend(framer.feed(stream[previous:cut]))
        assert framer.buffered_bytes <= cap + 10, "the framer holds more than a frame"
        previous = cut
    last = framer.finish()
    return [*frames, *([last] if last else [])]


class _Fallbacks(logging.Handler):
    """Notes a regex that fell back from RE2 to Python's backtracking re: matching with it
    is the rules check's business (issue 20's other half), not this target's."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = False

    def emit(self, record: logging.LogRecord) -> None:
        if "not RE2-compatible" in record.getMessage():
            self.seen = True


_FALLBACKS = _Fallbacks()
logging.getLogger("socpipe.detectors.regex").addHandler(_FALLBACKS)


def rules(data: bytes) -> None:
    path = _FOLDER / "rule.yml"
    path.write_bytes(data)
    _FALLBACKS.seen = False
    report = load_rules([path])  # collects problems, never raises them
    if _FALLBACKS.seen:
        return
    for rule in report.rules:
        for event in SAMPLE_EVENTS:
            rule.matcher(EventView(event))


def evtx(data: bytes) -> None:
    path = _FOLDER / "fuzz.evtx"
    path.write_bytes(data)
    read = RecordIds()
    try:
        for record_id, event in read_evtx(path, CONTEXT):
            read.add(record_id)
            envelope.encode(event)
    except (RuntimeError, OSError, ValueError):
        pass  # the parser refusing the whole file is reported as an unreadable file
    evtx_damage(path, read)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "parsers": parsers,
    "envelope": envelope_target,
    "framer": framer,
    "rules": rules,
    "evtx": evtx,
}

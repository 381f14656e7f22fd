"""Every parser does work linear in a line's length, however the line is built (issue 20, 4).

Counted in machine instructions (tests/workcount.py), not timed: a line four times as long
must cost about four times as much, where a regex retrying from every occurrence of a piece
costs sixteen times (or, nested, without bound). The lines are tests/hostile_lines.py's:
each format's opening and one piece of its syntax repeated. ``make test`` measures the cases
below (every opening with the pieces its grammar is made of, and every case that was
quadratic or worse before); ``make fuzz`` (SOCPIPE_FUZZ_FULL=1) measures all of them.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests import hostile_lines
from tests.workcount import count_instructions

#: Line lengths measured: the longer is four times the shorter.
SIZES = [1024, 4096]
#: Work growing more than this when the line grows four times is not linear (linear gives
#: about 4, quadratic about 16).
LIMIT = 8.0
#: Pieces every format's opening is tried with.
CORE_PIECES = ["word", "paren", "bracket", "quote", "key-equals", "digit", "type"]
#: Lines that took time growing with the square of their length, or more, before.
WERE_SLOW = [
    "sudo-header|sudo-field|none",
    "sudo-header|sudo-semicolon|none",
    "audit|word|none",
    "audit|backslash|none",
    "syslog-audit|digit|none",
    "bsd|word-paren|none",
    "sshd|ssh-failed|none",
    "sshd|ssh-accepted|none",
    "sshd|ssh-invalid|none",
    "sshd|ssh-invalid|bracket",
    "sshd|pam-failure|none",
    "rfc5424|pam-failure|none",
    "useradd|new-user|none",
    "rfc5424-sd|word|bracket",
    "rfc5424-sd|digit|bracket",
    "json|json-nest|brace",
    "cef|cef-key|none",
    "access|client|none",
    "apache-error|client|none",
]


def cases() -> list[str]:
    if os.environ.get("SOCPIPE_FUZZ_FULL"):
        return hostile_lines.CASES
    core = [f"{prefix}|{piece}|none" for prefix in hostile_lines.PREFIXES for piece in CORE_PIECES]
    return [*dict.fromkeys([*core, *WERE_SLOW])]


def test_every_parser_does_linear_work_on_hostile_lines(tmp_path: Path) -> None:
    measured = [hostile_lines.CONTROL, *cases()]
    # Generous: these take seconds; a quadratic parser on lines of this length takes hours
    # under valgrind, and the deadline is what fails it then.
    counts = count_instructions("tests.hostile_lines", measured, SIZES, tmp_path, timeout=900)
    growth = {case: large / small for case, (small, large) in counts.items()}
    # The measurement tells quadratic work apart, or this test would prove nothing.
    assert growth.pop(hostile_lines.CONTROL) > 12
    too_much = {case: round(ratio, 1) for case, ratio in growth.items() if ratio > LIMIT}
    assert not too_much, f"work grows faster than the line on: {too_much}"

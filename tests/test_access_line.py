"""The access log fast path agrees with the access log regexes, which define it."""

from __future__ import annotations

import gzip
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from socpipe.collectors.parsers.access_line import (
    ACCESS,
    ACCESS_VHOST,
    split_access_line,
    split_common_access,
)
from tests.conftest import shared_data

REPO = Path(__file__).resolve().parent.parent


def by_regex(line: str) -> tuple | None:
    match = ACCESS.match(line) or ACCESS_VHOST.match(line)
    if match is None:
        return None
    names = ("client", "user", "time", "request", "status", "bytes", "referrer", "agent")
    vhost = match["vhost"] if "vhost" in match.re.groupindex else None
    return (vhost, *(match[name] for name in names))


def assert_agrees(line: str) -> None:
    fast = split_common_access(line)
    assert fast is None or fast == by_regex(line), line
    assert split_access_line(line) == by_regex(line), line


def test_fast_path_agrees_on_the_samples_and_takes_the_common_lines() -> None:
    lines = (REPO / "samples" / "web" / "access.log").read_text().splitlines()
    with gzip.open(REPO / "samples" / "web" / "access.log.1.gz", "rt") as rotated:
        lines += rotated.read().splitlines()
    for line in lines:
        assert_agrees(line)
    taken = [line for line in lines if split_common_access(line) is not None]
    assert len(lines) > 800
    assert len(taken) == len(lines)


def test_other_formats_are_not_taken_for_access_lines() -> None:
    # loghub's Apache sample is an error log: neither path may read it as an access log.
    apache = shared_data("loghub", "2k", "Apache") / "Apache_2k.log"
    for line in apache.read_text(encoding="utf-8", errors="replace").splitlines():
        assert split_access_line(line) is None, line


# Pieces that sit on the fast path's decisions.
_PIECES = st.sampled_from(
    [
        " ",
        "  ",
        '"',
        '" "',
        "[",
        "]",
        "] ",
        "-",
        "200",
        "2000",
        "20",
        "\u0662\u0660\u0660",
        "\\",
        '\\"',
        "\t",
        "\xa0",
        "\x00",
        "\n",
        "a",
        "GET / HTTP/1.1",
        "1234",
        "x:80",
    ]
)
_LINE = st.builds(
    lambda client, user, stamp, request, status, size, tail: (
        f'{client} - {user} [{stamp}] "{request}" {status} {size}{tail}'
    ),
    client=st.sampled_from(["10.0.0.1", "host", "h\tx", "h\xa0x", "a b", "", "vh:80 10.0.0.1"]),
    user=st.sampled_from(["-", "alice", "", "a b", "x]"]),
    stamp=st.sampled_from(["03/Mar/2026:10:15:32 +0700", "", "x]y"]),
    request=st.lists(_PIECES, max_size=4).map("".join),
    status=st.sampled_from(
        ["200", "-", "20", "2000", "\u0662\u0660\u0660", "\u00b2\u00b2\u00b2", "-1"]
    ),
    size=st.sampled_from(["123", "-", "", "12a", "\u0661\u0662", "--"]),
    tail=st.lists(_PIECES, max_size=6).map("".join),
)


@settings(max_examples=1500, deadline=None)
@given(_LINE)
@example('10.0.0.1 - - [03/Mar/2026:10:15:32 +0700] "GET / HTTP/1.1" 200 12 "-" "curl/8"')
@example('10.0.0.1 - - [03/Mar/2026:10:15:32 +0700] "GET / HTTP/1.1" 200 12 "-"')
@example('10.0.0.1 - - [03/Mar/2026:10:15:32 +0700] "GET / HTTP/1.1" - - "r" "a" extra')
@example('10.0.0.1 - - [03/Mar/2026:10:15:32 +0700] "GET / HTTP/1.1" 2000 12')
@example('10.0.0.1 - - [03/Mar/2026:10:15:32 +0700] "GET / HTTP/1.1" \u00b2\u00b2\u00b2 12')
@example('10.0.0.1 - - [03/Mar/2026:10:15:32 +0700] "GET / HTTP/1.1" 200 12x "r" "a"')
@example('10.0.0.1 - - [03/Mar/2026:10:15:32 +0700] "GET \\" / HTTP/1.1" 200 12')
@example('h\tx - - [03/Mar/2026:10:15:32 +0700] "GET / HTTP/1.1" 200 12')
@example('10.0.0.1 - a b [03/Mar/2026:10:15:32 +0700] "GET / HTTP/1.1" 200 12')
@example('10.0.0.1 - - [03/Mar/2026:10:15:32 +0700] "GET /"x200 12')
@example('10.0.0.1 - - [03/Mar/2026:10:15:32 +0700] "GET /" 20012 5')
@example('10.0.0.1 - - [03/Mar/2026:10:15:32 +0700] "GET /" -12 5')
@example('10.0.0.1 - - [03/Mar/2026:10:15:32 +0700] "GET /" 200 1\u00b2 "r" "a"')
@example('10.0.0.1 - - [03/Mar/2026:10:15:32 +0700] "GET /" 200 12 "r" "unterminated')
@example('10.0.0.1 - - [03/Mar/2026:10:15:32 +0700] "GET /x\\" 200 5 HTTP/1.1" 200 12')
@example('10.0.0.1 - - [03/Mar/2026:10:15:32 +0700] "GET /" 200 12 "a"b" "agent"')
@example('10.0.0.1 - - [03/Mar/2026:10:15:32 +0700] "GET /a"b" 200 12')
def test_fast_path_agrees_on_shaped_random_lines(line: str) -> None:
    assert_agrees(line)


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_fast_path_agrees_on_any_text(line: str) -> None:
    assert_agrees(line)

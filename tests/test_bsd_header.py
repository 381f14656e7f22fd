"""The BSD syslog header's fast path agrees with the header regex, which defines it."""

from __future__ import annotations

from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from collectors.parsers.bsd_header import BSD_HEADER, split_bsd_header, split_common_header
from tests.conftest import shared_data

REPO = Path(__file__).resolve().parent.parent


def by_regex(line: str) -> tuple | None:
    match = BSD_HEADER.match(line)
    if match is None:
        return None
    return match["pri"], match["ts"], match["host"], match["prog"], match["pid"], match["msg"]


def assert_agrees(line: str) -> None:
    fast = split_common_header(line)
    assert fast is None or fast == by_regex(line), line
    assert split_bsd_header(line) == by_regex(line), line


def real_lines() -> list[str]:
    lines: list[str] = []
    for path in sorted((REPO / "samples").rglob("*.log")):
        lines += path.read_text(encoding="utf-8", errors="replace").splitlines()
    for system in ("OpenSSH", "Linux"):
        path = shared_data("loghub", "2k", system) / f"{system}_2k.log"
        lines += path.read_text(encoding="utf-8", errors="replace").splitlines()
    return lines


def test_fast_path_agrees_on_real_logs_and_takes_the_common_lines() -> None:
    lines = real_lines()
    for line in lines:
        assert_agrees(line)
    taken = sum(1 for line in lines if split_common_header(line) is not None)
    syslog = sum(1 for line in lines if BSD_HEADER.match(line))
    # Most syslog lines take the fast path; the loghub Linux sample's "sshd(pam_unix)[..]"
    # programs go to the regex.
    assert taken > syslog // 2


def test_common_shapes_take_the_fast_path() -> None:
    for line in (
        "Mar  3 10:00:01 web01 sshd[811]: Failed password for root from 203.0.113.9 port 22 ssh2",
        "<38>Mar 13 10:00:01 web01 sudo: alice : TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/bin/id",
        "Mar 3 10:00:01 web01 kernel: [ 1.234] usb 1-1: new device",
        "Mar  3 10:00:01 web01 CEF:0|Vendor|Product|1|100|name|5|src=10.0.0.1",
    ):
        assert split_common_header(line) is not None, line
        assert_agrees(line)


# Pieces that sit on the fast path's decisions: spaces, the separators of the program part,
# digits of other scripts, whitespace other than the space, control characters.
_PIECES = st.sampled_from(
    [
        " ",
        "  ",
        ":",
        ": ",
        "[",
        "]",
        "[12]",
        "[\u0661\u0662]",
        "[1a]",
        "[\u00b2]",
        "(",
        ")",
        "(pam_unix)",
        "<",
        ">",
        "<13>",
        "<1234>",
        "CEF:",
        "\t",
        "\xa0",
        "\x00",
        "\n",
        ".",
        ".123",
        "host",
        "sshd",
        "x",
        "7",
        "Mar",
        "10:00:01",
    ]
)


@settings(max_examples=1500, deadline=None)
@given(
    pri=st.sampled_from(["", "<13>", "<0>", "<191>", "<1234>", "<>", "<x>", "<1"]),
    month=st.sampled_from(["Mar", "mar", "MAR", "Ma", "Mär"]),
    day=st.sampled_from([" 3", "  3", "   3", "3", "13", "013", "\u0661\u0663", " 3x"]),
    clock=st.sampled_from(
        ["10:00:01", "10:00:01.5", "10:00:1", "10-00-01", "\u0661\u0660:\u0660\u0660:\u0660\u0661"]
    ),
    rest=st.lists(_PIECES, max_size=8).map(lambda pieces: " " + " ".join(pieces))
    | st.lists(_PIECES, max_size=8).map(lambda pieces: " " + "".join(pieces)),
)
@example(pri="", month="Mar", day=" 3", clock="10:00:01", rest=" h p[1]:msg")
@example(pri="<13>", month="Mar", day=" 3", clock="10:00:01.5", rest=" h p: x")
@example(pri="", month="Mar", day=" 3", clock="10:00:01", rest=" p: msg")
@example(pri="", month="Mar", day=" 3", clock="10:00:01", rest=" h p[1] x")
@example(pri="", month="Mar", day=" 3", clock="10:00:01", rest=" h\tp: x")
@example(pri="", month="Mar", day=" 3", clock="10:00:01", rest=" h p[\u00b2]: x")
@example(pri="", month="Mar", day=" 3", clock="10:00:01", rest=" ho\tst p: x")
@example(pri="", month="Mar", day=" 3", clock="10:00:01", rest=" h p\xa0q: x")
def test_fast_path_agrees_on_shaped_random_lines(
    pri: str, month: str, day: str, clock: str, rest: str
) -> None:
    assert_agrees(f"{pri}{month}{day} {clock}{rest}")


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_fast_path_agrees_on_any_text(line: str) -> None:
    assert_agrees(line)

"""Parsers on every line of real public logs (loghub 2k samples)."""

from __future__ import annotations

import csv
import re

import pytest

from socpipe.collectors.files import FileEventReader
from socpipe.collectors.parsers import ParseContext
from tests.conftest import shared_data


def events_of(system: str) -> tuple[list[dict], list[dict]]:
    folder = shared_data("loghub", "2k", system)
    reader = FileEventReader(ParseContext(agency_id="loghub"))
    events = list(reader.read([folder / f"{system}_2k.log"]))
    with (folder / f"{system}_2k.log_structured.csv").open(encoding="utf-8") as handle:
        truth = list(csv.DictReader(handle))
    return events, truth


@pytest.mark.parametrize("system", ["OpenSSH", "Linux", "Apache"])
def test_every_line_becomes_a_parsed_event(system: str) -> None:
    events, truth = events_of(system)
    assert len(events) == len(truth) == 2000
    assert [e["event.dataset"] for e in events if e["event.dataset"] == "generic.log"] == []
    client = re.compile(r"\[client ([\d.]+)\] ")
    for event, row in zip(events, truth, strict=True):
        content, message = row["Content"].strip(), event["message"].strip()
        if system == "Apache":
            # The client address moves from the text to source.ip.
            if match := client.match(content):
                assert event["source.ip"] == match[1]
                content = content[match.end() :]
            assert message == content
        else:
            # loghub splits "syslogd 1.4.1: restart." into a component and "restart.".
            assert message.endswith(content)


def test_openssh_key_fields_on_the_lines_that_carry_them() -> None:
    events, truth = events_of("OpenSSH")
    failed = re.compile(r"Failed password for (?:invalid user )?(\S+) from ([\d.]+) port (\d+)")
    invalid = re.compile(r"Invalid user (.*?) from ([\d.]+)")
    checked = 0
    for event, row in zip(events, truth, strict=True):
        assert event["host.name"] == row["Component"]
        assert event["process.pid"] == int(row["Pid"])
        if match := failed.search(row["Content"]):
            assert (event["user.name"], event["source.ip"], event["source.port"]) == (
                match[1],
                match[2],
                int(match[3]),
            )
            assert event["event.outcome"] == "failure"
            checked += 1
        elif match := invalid.match(row["Content"]):
            assert (event["user.name"], event["source.ip"]) == (match[1], match[2])
            checked += 1
    assert checked > 600


def test_linux_pam_failures_carry_the_remote_host() -> None:
    events, truth = events_of("Linux")
    rhost = re.compile(r"authentication failure;.*rhost=(\S+)")
    checked = 0
    for event, row in zip(events, truth, strict=True):
        if match := rhost.search(row["Content"]):
            assert event["source.ip"] == match[1]
            assert event["event.outcome"] == "failure"
            checked += 1
    assert checked > 300


def test_apache_error_levels() -> None:
    events, truth = events_of("Apache")
    for event, row in zip(events, truth, strict=True):
        assert event["log.level"] == row["Level"]

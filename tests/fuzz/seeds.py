"""Seed inputs for each fuzz target, from the samples and the tests' own files: the fuzzer
starts from real logs, records, streams, rules and EVTX, and mutates from there."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterator
from pathlib import Path

import yaml

from socpipe.collectors.parsers import parse_detected
from socpipe.core import envelope
from tests.conftest import FILES, REPO
from tests.fuzz.targets import CONTEXT
from tests.hostile_lines import CASES, make_input

#: Lines taken from each sample file (spread over it): variety, not volume.
LINES_PER_FILE = 200


def sample_lines() -> list[bytes]:
    lines: list[bytes] = []
    for path in sorted((REPO / "samples").rglob("*")):
        if not path.is_file():
            continue
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        every = data.splitlines()
        step = max(len(every) // LINES_PER_FILE, 1)
        lines.extend(every[::step][:LINES_PER_FILE])
    for tests_file in sorted((REPO / "rules").rglob("*.tests.yml")):
        document = yaml.safe_load(tests_file.read_text()) or {}
        for key in ("match", "no_match"):
            lines.extend(str(line).encode() for line in document.get(key) or [])
    lines.extend(make_input(case, 40).encode() for case in CASES[::7])
    return lines


def parsers() -> Iterator[bytes]:
    yield from sample_lines()


def envelope_seeds() -> Iterator[bytes]:
    events = [envelope.encode(parse_detected(line.decode(), CONTEXT)[0]) for line in sample_lines()]
    for start in range(0, len(events), 100):
        yield b"\n".join(events[start : start + 100])
    yield b'{\n  "pretty": "printed",\n  "n": 1\n}'


def framer() -> Iterator[bytes]:
    lines = sample_lines()
    for start in range(0, len(lines), 50):
        chunk = lines[start : start + 50]
        yield b"\x20" + b"".join(b"%d %s" % (len(line), line) for line in chunk)
        yield b"\x08" + b"".join(line + b"\n" for line in chunk)


def rules() -> Iterator[bytes]:
    for path in sorted((REPO / "rules").rglob("*.yml")):
        if not path.name.endswith(".tests.yml"):
            yield path.read_bytes()


def evtx() -> Iterator[bytes]:
    sample = (FILES / "security_sample.evtx").read_bytes()
    yield sample
    yield sample[: 4096 + 4096]


SEEDS = {
    "parsers": parsers,
    "envelope": envelope_seeds,
    "framer": framer,
    "rules": rules,
    "evtx": evtx,
}


def write_seeds(target: str, folder: Path) -> int:
    """The target's seeds as files in ``folder`` (named by content); how many."""
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    for seed in SEEDS[target]():
        (folder / hashlib.sha1(seed).hexdigest()).write_bytes(seed)
        count += 1
    return count

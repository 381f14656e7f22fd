"""Shared fixtures: where the reference data lives, and how to compile a rule from text."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest
import yaml

from socpipe.detectors.event_view import EventView
from socpipe.detectors.rules import CompiledRule, compile_rule

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("SOCPIPE_SHARED_DATA", REPO.parent / "shared" / "data"))
FILES = Path(__file__).resolve().parent / "files"


def stale_compiled_modules(root: Path) -> list[str]:
    """Sources edited after `pip install` compiled them (setup.py): Python imports the
    extension module before the source, so tests would run the old code."""
    stale = []
    for package in ("core", "collectors", "detectors", "scanner", "daemon", "sinks", "forwarding"):
        for extension in (root / package).rglob("*.so"):
            source = extension.with_name(extension.name.split(".", 1)[0] + ".py")
            if source.exists() and source.stat().st_mtime > extension.stat().st_mtime:
                stale.append(str(source.relative_to(root)))
    return sorted(stale)


def pytest_sessionstart(session: pytest.Session) -> None:
    stale = stale_compiled_modules(REPO)
    if stale:
        pytest.exit(
            f"changed since compiled: {', '.join(stale)}; compile again with "
            "`.venv/bin/pip install -e .` (`make test` does it)",
            returncode=2,
        )


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data, skipping the test with a reason when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"reference data not found: {path} (set SOCPIPE_SHARED_DATA)")
    return path


def make_rule(detection: str, logsource: str = "{product: test}") -> CompiledRule:
    """Compile a rule from the text of its ``detection`` section, with no field mapping."""
    text = (
        "title: test rule\nid: 0c7a8f2e-9f55-4e8a-9a43-6c39a2b4f001\n"
        f"logsource: {logsource}\ndetection:\n{textwrap.indent(textwrap.dedent(detection), '  ')}"
    )
    return compile_rule(yaml.safe_load(text), "inline-test.yml")


def matches(detection: str, event: dict) -> bool:
    return make_rule(detection).matcher(EventView(event))


@pytest.fixture(scope="session")
def sample_scan_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A scan of the bundled samples: its alerts file and its incidents file."""
    from socpipe.pipeline import main

    folder = tmp_path_factory.mktemp("sample-scan")
    alerts, incidents = folder / "alerts.jsonl", folder / "incidents.jsonl"
    arguments = ["scan", str(REPO / "samples"), "--agency", "so-tttt", "--out", str(alerts)]
    assert main([*arguments, "--incidents-out", str(incidents), "--no-progress"]) == 0
    return alerts, incidents


@pytest.fixture(scope="session")
def sample_alerts(sample_scan_files: tuple[Path, Path]) -> list[dict]:
    """The alerts of a scan of the bundled samples: real alert documents of every kind."""
    return [json.loads(line) for line in sample_scan_files[0].read_text().splitlines()]


@pytest.fixture(scope="session")
def sample_incidents(sample_scan_files: tuple[Path, Path]) -> list[dict]:
    """The incidents of a scan of the bundled samples, each as the detect stage publishes its
    first update (``incident.previous_level`` None: it just opened)."""
    incidents = [json.loads(line) for line in sample_scan_files[1].read_text().splitlines()]
    return [{**incident, "incident.previous_level": None} for incident in incidents]


class RecordingPublisher:
    """Stands in for the Kafka publisher where a test is about which events a collector
    makes (Kafka itself is tested in tests/integration)."""

    def __init__(self) -> None:
        self.events: list[dict] = []

    def publish(self, event: dict) -> None:
        self.events.append(event)

    def confirm(self) -> int:
        return len(self.events)

"""``socpipe --log-format json``: every line a command writes on stderr is one JSON object,
for log shippers; configured once in the command line for every command."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import REPO


def records(text: str) -> list[dict]:
    def refuse(constant: str) -> object:
        raise ValueError(constant)

    return [json.loads(line, parse_constant=refuse) for line in text.splitlines() if line]


def test_a_failed_command_says_why_in_json() -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "pipeline.py"),
            "--log-format",
            "json",
            "scan",
            "/nonexistent/auth.log",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    assert result.returncode == 2
    [record] = [line for line in records(result.stderr) if line["level"] == "ERROR"]
    assert record["level"] == "ERROR"
    assert "no such file or folder: /nonexistent/auth.log" in record["message"]
    assert record["time"].endswith("Z")


def test_a_collector_logs_its_state_in_json(tmp_path: Path) -> None:
    config = tmp_path / "socpipe.yml"
    config.write_text('kafka: {bootstrap_servers: ["127.0.0.1:9"]}\n')
    log = tmp_path / "stderr"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [
                sys.executable,
                str(REPO / "pipeline.py"),
                "--log-format",
                "json",
                "collect",
                "syslog",
                "--tcp",
                "127.0.0.1:0",
                "--spool",
                str(tmp_path / "journal"),
                "--agency",
                "so-tttt",
                "--timezone",
                "UTC",
                "--config",
                str(config),
            ],
            stderr=stderr,
            cwd=REPO,
        )
    try:
        deadline = time.monotonic() + 60
        while "syslog tcp on" not in log.read_text():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the collector did not start"
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    assert process.returncode == 0
    lines = records(log.read_text())
    assert any(line["message"].startswith("syslog tcp on ('127.0.0.1', ") for line in lines)
    assert {line["logger"] for line in lines} >= {"socpipe.commands.collect"}

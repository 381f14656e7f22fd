"""How long a restarted detect stage takes to rebuild its windows from Kafka (daemon/replay.py).

    scripts/services.sh up && .venv/bin/python -m bench.restart [--quick]

N generated Linux auth events (the scan benchmark's corpus: benign traffic, brute forces and
other attacks) are published to a fresh events topic and detected by one ``socpipe run
--stages detect`` process until its offsets are committed. That process is stopped and a new
one started: it re-reads all N events (they are within the default horizon) before going
live. Reported: the re-read time each partition logs (``state rebuilt from ... in S s``, the
longest of them: partitions are re-read together), the events re-read (the process's
``socpipe_stage_replayed_events_total``), and the whole restart from process start to live,
with the same restart without history (``state_replay_secs: 0``) beside it for the fixed
cost of starting and joining the group. Results go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

import yaml
from kafka.admin import KafkaAdminClient

from bench.corpus import generate
from bench.report import write_section
from bench.streaming import run_config
from socpipe.collectors.parsers import ParseContext, parse_detected
from socpipe.collectors.publisher import EventPublisher
from socpipe.core.config import Config, load_config
from socpipe.core.kafka_clients import ensure_topics, group_caught_up

REPO = Path(__file__).resolve().parent.parent
REBUILT = re.compile(r"state rebuilt from \d+ records in ([\d.]+) s")
REPLAYED_METRIC = re.compile(r'^socpipe_stage_replayed_events_total\{stage="detect"\} (\S+)$', re.M)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(0.2)


def publish(config: Config, lines: int) -> int:
    """The corpus of ``lines`` benign lines (plus its attacks) as events; returns how many."""
    context = ParseContext(agency_id="bench")
    publisher = EventPublisher(config.kafka, "bench")
    published = 0
    for line in generate("linux", lines, attacks=max(lines // 2000, 1)):
        publisher.publish(parse_detected(line, context)[0])
        published += 1
    publisher.close()
    return published


class DetectProcess:
    """``socpipe run --stages detect`` with its own log and metrics port."""

    def __init__(self, config: Config, folder: Path, name: str) -> None:
        self.port = free_port()
        self.log = folder / f"{name}.log"
        config_file = folder / f"{name}.yml"
        configured = replace(config, metrics=replace(config.metrics, port=self.port))
        config_file.write_text(yaml.safe_dump(asdict(configured)))
        self.started = time.monotonic()
        with self.log.open("w") as output:
            self.process = subprocess.Popen(
                [
                    *(sys.executable, str(REPO / "pipeline.py"), "-v", "run"),
                    *("--config", str(config_file), "--stages", "detect"),
                ],
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def replayed(self) -> float:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics") as response:
                found = REPLAYED_METRIC.search(response.read().decode())
        except OSError:
            return 0.0
        return float(found.group(1)) if found else 0.0

    def __enter__(self) -> DetectProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        """SIGTERM (the batch in hand is committed); killed if it does not stop in time."""
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def restart(config: Config, folder: Path, events: int) -> dict:
    """Detect everything once, then time a restart with and without re-reading history."""
    with DetectProcess(config, folder, "first"):
        wait_for(
            lambda: group_caught_up(
                config.kafka, config.stages.detect_group, config.kafka.topics.events
            ),
            1800,
            "the first detect process's commit",
        )

    no_history = replace(config, stages=replace(config.stages, state_replay_secs=0))
    with DetectProcess(no_history, folder, "without-history") as without:
        wait_for(lambda: "assigned partitions" in without.text(), 300, "joining the group")
        joined = time.monotonic() - without.started

    with DetectProcess(config, folder, "restart") as second:
        wait_for(lambda: second.replayed() >= events, 1800, "re-reading the history")
        live = time.monotonic() - second.started
        replayed = second.replayed()
        wait_for(lambda: "state rebuilt" in second.text(), 60, "the rebuilt message")
        rebuild = max(float(seconds) for seconds in REBUILT.findall(second.text()))
    return {"events": replayed, "rebuild": rebuild, "live": live, "joined": joined}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    lines = 50_000 if args.quick else 500_000
    config = run_config(load_config())
    ensure_topics(config.kafka)
    try:
        started = time.monotonic()
        events = publish(config, lines)
        print(f"published {events:,} events in {time.monotonic() - started:.0f} s", flush=True)
        with tempfile.TemporaryDirectory() as folder:
            result = restart(config, Path(folder), events)
    finally:
        admin = KafkaAdminClient(**config.kafka.client_options())
        topics = config.kafka.topics
        admin.delete_topics(
            [topics.events, topics.alerts, topics.deadletter, topics.incidents, topics.forwarding]
        )
        admin.close()
    rate = result["events"] / result["rebuild"]
    rows = [
        f"- Date: {time.strftime('%Y-%m-%d')}; machine as above; Kafka 4.1.1 on the same 2 cores;"
        f" {config.kafka.partitions} partitions, one detect process, the project's rules",
        "- Command: `scripts/services.sh up && .venv/bin/python -m bench.restart`",
        "",
        "| history re-read | re-read time | re-read events/s | restart to live"
        " | restart without history |",
        "| ---: | ---: | ---: | ---: | ---: |",
        f"| {result['events']:,.0f} events | {result['rebuild']:.1f} s | {rate:,.0f} |"
        f" {result['live']:.1f} s | {result['joined']:.1f} s |",
    ]
    print("\n".join(rows))
    if not args.quick:
        document = write_section(
            "bench.restart", rows, "## Detect stage restart: rebuilding windows (bench/restart.py)"
        )
        print(f"written to {document}")


if __name__ == "__main__":
    os.chdir(REPO)
    main()

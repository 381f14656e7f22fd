"""socpipe scaled out on a real cluster, with a broker, a search node and a detect process lost
in turn under load; what was indexed and raised is then checked against a one-process run.

    scripts/services.sh up --cluster && .venv/bin/python -m bench.cluster [--lines N] [--rate R]

The cluster is the one of ``scripts/services.sh up --cluster`` (three Kafka brokers with
replication factor 3 and min.insync.replicas 2, two Elasticsearch nodes with one replica):
its socpipe configuration is read from the file the script writes. Two detect processes share
one consumer group, two index processes another, and one file collector follows a log that
this program appends to at a fixed rate: SSH logins on several hosts (so that the events
spread over the partitions), a root login every 97th line, and one brute force followed by a
successful login whose lines straddle the loss of the detect process that holds their
partition (the survivor takes the partition over and rebuilds the windows from history).

Timeline, by the share of lines written: at 20 % a broker is killed (SIGKILL), and started
again at once (`services.sh up --cluster`); at 45 % the Elasticsearch node es-c2, likewise;
at 70 % the detect process that holds the brute force's partition, which is not started
again. At the end, every event must be in Elasticsearch exactly once (the indexed ids equal
those of the lines), and the alerts exactly those that the same lines raise in one process.
``tests/integration/test_cluster.py`` runs this scenario and asserts that; this program times
it and writes docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch
from kafka.admin import KafkaAdminClient
from kafka.partitioner import murmur2

from bench.names import isolated
from bench.report import write_section
from socpipe.collectors.files import FileEventReader
from socpipe.collectors.parsers import ParseContext
from socpipe.core.config import Config, config_document, load_config
from socpipe.core.kafka_clients import ensure_topics, group_caught_up, pipeline_topics
from socpipe.core.resources import bundled_rules_dir
from socpipe.detectors.detection import Detector
from socpipe.detectors.rules import load_rules
from socpipe.sinks.elasticsearch import connect, install_templates

REPO = Path(__file__).resolve().parent.parent
SERVICES = Path(os.environ.get("SOCPIPE_SERVICES_DIR", "/var/lib/socpipe-services"))
CLUSTER_DIR = SERVICES / "cluster"
CLUSTER_CONFIG = CLUSTER_DIR / "socpipe-cluster.yml"
START, END = "<!-- bench.cluster results start -->", "<!-- bench.cluster results end -->"
AGENCY = "so-cluster"
HOSTS = 8
BRUTE_HOST, BRUTE_SOURCE = "h3", "198.51.100.23"
#: Failed logins of the brute force before and after the detect process holding them is lost
#: (ten make the correlation: it completes only in the process that took over).
BRUTE_BEFORE, BRUTE_AFTER = 6, 6
BROKER_TO_KILL, ES_NODE_TO_KILL = 2, 2


class ClusterUnavailable(RuntimeError):
    """The cluster of ``scripts/services.sh up --cluster`` is not running."""


def cluster_config() -> Config:
    if not CLUSTER_CONFIG.exists():
        raise ClusterUnavailable(
            f"{CLUSTER_CONFIG} not found: run scripts/services.sh up --cluster"
        )
    return load_config(CLUSTER_CONFIG)


def run_config(base: Config) -> Config:
    """Topics, groups and indices of one run alone."""
    return isolated(base, "c" + uuid.uuid4().hex[:8], poll_timeout_ms=200)


def syslog_time(moment: datetime) -> str:
    return f"{moment:%b} {moment.day:2d} {moment:%H:%M:%S}"


def log_line(number: int, moment: datetime) -> str:
    """Line ``number``: a login on one of the hosts, a root login every 97th. A source address
    logs in to one host only: correlations grouped by source then see all its events in one
    partition, as they do in one process (docs/correlation.md, partitioning)."""
    host, turn = number % HOSTS, number // HOSTS
    if number % 97 == 0:
        text = f"Accepted password for root from 203.0.113.{host * 20 + turn % 20 + 1} port 22 ssh2"
    else:
        text = f"Accepted publickey for deploy from 10.20.{host}.{turn % 250 + 1} port 22 ssh2"
    return f"{syslog_time(moment)} h{host} sshd[{1000 + number}]: {text}"


def brute_force_line(attempt: int, moment: datetime) -> str:
    return (
        f"{syslog_time(moment)} {BRUTE_HOST} sshd[{900 + attempt}]: Failed password for admin"
        f" from {BRUTE_SOURCE} port {40000 + attempt} ssh2"
    )


def success_line(moment: datetime) -> str:
    return (
        f"{syslog_time(moment)} {BRUTE_HOST} sshd[899]: Accepted password for admin from"
        f" {BRUTE_SOURCE} port 40100 ssh2"
    )


@dataclass
class Phase:
    """One fault: what was lost, when, and how long until it was back."""

    name: str
    killed_at: float
    back_at: float | None = None


@dataclass
class Report:
    lines: int
    seconds: float
    phases: list[Phase] = field(default_factory=list)
    #: Seconds from the last line written to everything indexed.
    drain_seconds: float = 0.0
    indexed_ids: set[str] = field(default_factory=set)
    indexed_documents: int = 0
    expected_ids: set[str] = field(default_factory=set)
    alert_ids: set[str] = field(default_factory=set)
    alert_documents: int = 0
    expected_alert_ids: set[str] = field(default_factory=set)
    #: Titles of the correlation alerts in Elasticsearch.
    correlation_titles: set[str] = field(default_factory=set)


class ClusterRun:
    """Processes of one run: two detect, two index, one file collector; and the log file."""

    def __init__(self, config: Config, folder: Path) -> None:
        self.config, self.folder = config, folder
        self.log = folder / "auth.log"
        self.log.touch()
        self.config_file = folder / "socpipe.yml"
        import yaml

        self.config_file.write_text(yaml.safe_dump(config_document(config)))
        self.es: Elasticsearch = connect(config.elasticsearch)
        # The agency's own events topic, as in production (per-agency topics).
        self.events_topic = config.kafka.events_topic(AGENCY)
        ensure_topics(config.kafka, [AGENCY])
        install_templates(self.es, config.elasticsearch)
        self.detect: list[subprocess.Popen[bytes]] = []
        self.index: list[subprocess.Popen[bytes]] = []
        self.collector: subprocess.Popen[bytes] | None = None
        self.detect_logs = [folder / f"detect-{n}.log" for n in (1, 2)]

    def _spawn(self, arguments: list[str], output: Path) -> subprocess.Popen[bytes]:
        with output.open("a") as handle:
            return subprocess.Popen(
                [sys.executable, str(REPO / "pipeline.py"), "-v", *arguments],
                cwd=REPO,
                stdout=handle,
                stderr=subprocess.STDOUT,
            )

    def start(self) -> None:
        run = ["run", "--config", str(self.config_file), "--stages"]
        self.detect = [self._spawn([*run, "detect"], log) for log in self.detect_logs]
        self.index = [self._spawn([*run, "index"], self.folder / f"index-{n}.log") for n in (1, 2)]
        self.collector = self._spawn(
            [
                "collect",
                "file",
                "--config",
                str(self.config_file),
                "--glob",
                str(self.log),
                "--state",
                str(self.folder / "state.json"),
                "--agency",
                AGENCY,
            ],
            self.folder / "collector.log",
        )

    def processes(self) -> list[subprocess.Popen[bytes]]:
        return [*self.detect, *self.index, *([self.collector] if self.collector else [])]

    def detect_holding(self, key: str) -> subprocess.Popen[bytes]:
        """The detect process whose last assignment holds the partition of ``key``."""
        # Kafka's default for keyed records, as the collector's producer places them.
        partition = (murmur2(key.encode()) & 0x7FFFFFFF) % self.config.kafka.partitions
        wanted = f"{self.events_topic}/{partition}"
        group = re.escape(self.config.stages.detect_group)
        for process, log in zip(self.detect, self.detect_logs, strict=True):
            assigned = re.findall(rf"group={group} assigned partitions=(\S+)", log.read_text())
            if process.poll() is None and assigned and wanted in assigned[-1].split(","):
                return process
        raise RuntimeError(f"no detect process holds {wanted}")

    def caught_up(self) -> bool:
        """Everything written is durably handled: the collector's position is the log's end,
        and both groups committed their topics to the end."""
        import json

        try:
            saved = json.loads((self.folder / "state.json").read_text())
        except (OSError, ValueError):
            return False
        if saved.get(str(self.log), {}).get("offset", 0) < self.log.stat().st_size:
            return False
        topics = self.config.kafka.topics
        stages = self.config.stages
        return (
            group_caught_up(self.config.kafka, stages.detect_group, self.events_topic)
            and group_caught_up(self.config.kafka, stages.index_group, self.events_topic)
            and group_caught_up(self.config.kafka, stages.index_group, topics.alerts)
        )

    def ids(self, index: str) -> tuple[set[str], int]:
        """Every document id of ``index`` (a pattern) and how many documents there are, read
        in pages from one point in time (pages of a plain search may come from different
        copies of a shard, whose internal order differs, and skip or repeat documents)."""
        self.es.indices.refresh(index=index, ignore_unavailable=True)
        if not self.es.indices.exists(index=index):
            return set(), 0
        pit = self.es.open_point_in_time(index=index, keep_alive="2m")["id"]
        found: set[str] = set()
        total = 0
        after: list[Any] | None = None
        try:
            while True:
                answer = self.es.search(
                    pit={"id": pit, "keep_alive": "2m"},
                    size=5000,
                    source=False,
                    sort=["_shard_doc"],
                    search_after=after,
                )
                page = answer["hits"]["hits"]
                if not page:
                    return found, total
                pit = answer.get("pit_id", pit)
                total += len(page)
                found.update(hit["_id"] for hit in page)
                after = page[-1]["sort"]
        finally:
            self.es.close_point_in_time(id=pit)

    def correlation_titles(self) -> set[str]:
        answer = self.es.search(
            index=self.config.elasticsearch.alerts_index,
            size=0,
            query={"exists": {"field": "correlation.type"}},
            aggregations={"titles": {"terms": {"field": "rule.name", "size": 100}}},
        )
        return {bucket["key"] for bucket in answer["aggregations"]["titles"]["buckets"]}

    def stop(self) -> None:
        for process in self.processes():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes():
            try:
                process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                process.kill()

    def clean(self) -> None:
        settings = self.config.elasticsearch
        prefix = settings.events_index_prefix.split("-", 1)[0]
        self.es.indices.delete(index=f"{prefix}-*", ignore_unavailable=True)
        self.es.indices.delete_index_template(name=f"{prefix}-*")
        admin = KafkaAdminClient(**self.config.kafka.client_options())
        admin.delete_topics(pipeline_topics(self.config.kafka, [AGENCY]))
        admin.close()


def services(*arguments: str) -> None:
    """scripts/services.sh with the cluster flag (root: it starts Elasticsearch as its user)."""
    subprocess.run(
        ["bash", str(REPO / "scripts" / "services.sh"), *arguments, "--cluster"],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def kill_pidfile(path: Path) -> None:
    os.kill(int(path.read_text()), signal.SIGKILL)


def expected_alerts(log: Path) -> set[str]:
    """The alert ids the lines raise in one process, as they arrive (no end-of-input flush:
    the daemon never has an end; the lines' times span less than any window, so no window
    closes on its own)."""
    reader = FileEventReader(ParseContext(AGENCY))
    detector = Detector(load_rules([bundled_rules_dir()]))
    return {alert.id for event in reader.read([log]) for alert in detector.process(event)}


def expected_event_ids(log: Path) -> set[str]:
    return {str(event["event.id"]) for event in FileEventReader(ParseContext(AGENCY)).read([log])}


def run_scenario(
    config: Config,
    folder: Path,
    lines: int,
    rate: float,
    faults: bool = True,
    timeout: float = 1800.0,
    progress: Callable[[str], None] = lambda _text: None,
) -> Report:
    """Write ``lines`` lines at ``rate`` per second through the cluster, losing a broker, a
    search node and a detect process in turn (``faults``); wait until everything written is
    handled and report what is in Elasticsearch beside what one process raises."""
    run = ClusterRun(config, folder)
    report = Report(lines, 0.0)
    try:
        run.start()
        time.sleep(10)  # the groups formed before the clock starts
        _write(run, lines, rate, faults, report, progress)
        written = time.monotonic()
        deadline = written + timeout
        while not run.caught_up():
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"not everything was handled {timeout:.0f} s after the last line"
                )
            time.sleep(1)
        report.drain_seconds = time.monotonic() - written
        settings = config.elasticsearch
        report.indexed_ids, report.indexed_documents = run.ids(f"{settings.events_index_prefix}*")
        report.alert_ids, report.alert_documents = run.ids(settings.alerts_index)
        report.correlation_titles = run.correlation_titles()
        report.expected_ids = expected_event_ids(run.log)
        report.expected_alert_ids = expected_alerts(run.log)
    finally:
        run.stop()
        run.clean()
    return report


def _write(
    run: ClusterRun,
    lines: int,
    rate: float,
    faults: bool,
    report: Report,
    progress: Callable[[str], None],
) -> None:
    """Append the lines at ``rate``; lose a broker, a search node and a detect process in turn
    at their share of the lines (the nodes are started again at once, and come back while the
    lines go on); write the brute force around the loss of the detect process."""
    started = time.monotonic()
    base = datetime.now(UTC) - timedelta(seconds=30)
    faults_left: list[tuple[float, str, Callable[[], None]]] = []
    if faults:
        faults_left = [
            (0.2, f"Kafka broker {BROKER_TO_KILL}", lambda: kill_pidfile(_pidfile("kafka"))),
            (
                0.45,
                f"Elasticsearch node es-c{ES_NODE_TO_KILL}",
                lambda: kill_pidfile(_pidfile("es")),
            ),
            (
                0.7,
                "the detect process holding the brute force",
                lambda: run.detect_holding(f"{AGENCY}/{BRUTE_HOST}").kill(),
            ),
        ]
    restarts: list[threading.Thread] = []
    # The brute force: its first attempts from 60 % of the lines, the rest once the detect
    # process holding them is lost (at once without faults), one every 50 lines.
    attempts: list[str] = []
    next_attempt = int(lines * 0.6)

    def restart(phase: Phase) -> None:
        services("up")
        phase.back_at = time.monotonic() - started

    with run.log.open("a") as handle:
        for number in range(lines):
            target = started + number / rate
            while (now := time.monotonic()) < target:
                time.sleep(min(target - now, 0.01))
            # Event times advance 5 ms a line: the run spans less than any window.
            moment = base + timedelta(milliseconds=5 * number)
            texts = [log_line(number, moment)]
            detect_lost = not faults or not faults_left
            if number >= next_attempt and (len(attempts) < BRUTE_BEFORE or detect_lost):
                if len(attempts) < BRUTE_BEFORE + BRUTE_AFTER:
                    attempts.append(brute_force_line(len(attempts), moment))
                    texts.append(attempts[-1])
                elif len(attempts) == BRUTE_BEFORE + BRUTE_AFTER:
                    attempts.append(success_line(moment))
                    texts.append(attempts[-1])
                next_attempt = number + 50
            handle.write("".join(text + "\n" for text in texts))
            handle.flush()
            if faults_left and number >= faults_left[0][0] * lines:
                share, name, kill = faults_left[0]
                if share >= 0.7 and len(attempts) < BRUTE_BEFORE:
                    continue  # the brute force must have begun before its process is lost
                faults_left.pop(0)
                kill()
                phase = Phase(name, time.monotonic() - started)
                report.phases.append(phase)
                progress(f"lost {name} at {phase.killed_at:.0f} s")
                if share < 0.7:
                    restarts.append(threading.Thread(target=restart, args=(phase,)))
                    restarts[-1].start()
    for thread in restarts:
        thread.join()
    if len(attempts) <= BRUTE_BEFORE + BRUTE_AFTER:
        raise RuntimeError("too few lines for the brute force to straddle the faults")
    report.seconds = time.monotonic() - started


def _pidfile(kind: str) -> Path:
    if kind == "kafka":
        return CLUSTER_DIR / f"kafka-{BROKER_TO_KILL}" / "kafka.pid"
    return CLUSTER_DIR / f"es-{ES_NODE_TO_KILL}" / "es.pid"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=30_000)
    parser.add_argument("--rate", type=float, default=150.0)
    parser.add_argument("--note", default="", help="a line on the machine's load, for the record")
    args = parser.parse_args()
    import tempfile

    started = time.monotonic()
    with tempfile.TemporaryDirectory() as folder:
        report = run_scenario(
            run_config(cluster_config()), Path(folder), args.lines, args.rate, progress=print
        )
    lines = [
        f"- Date: {time.strftime('%Y-%m-%d')}; machine as above; Kafka 4.1.1 (three nodes, each"
        " broker and controller, replication factor 3, min.insync.replicas 2) and Elasticsearch"
        " 9.5.0 (two nodes, one replica), 512 MB heaps, beside the single-node services; two"
        " detect and two index processes, one file collector",
        f"- Command: `scripts/services.sh up --cluster && .venv/bin/python -m bench.cluster"
        f" --lines {args.lines} --rate {args.rate:g}`; the whole run took"
        f" {time.monotonic() - started:.0f} s",
        *([f"- {args.note}"] if args.note else []),
        "",
        render(report),
    ]
    print("\n".join(lines))
    write_section("bench.cluster", lines, "## socpipe on a cluster (bench/cluster.py)")


def render(report: Report) -> str:
    rows = [
        f"- {report.lines:,} lines written at {report.lines / report.seconds:,.0f}/s over"
        f" {report.seconds:.0f} s; everything handled {report.drain_seconds:.0f} s after the last"
        f" ({report.lines / (report.seconds + report.drain_seconds):,.0f} events/s end to end"
        " over the whole run, faults included)",
        f"- events indexed: {report.indexed_documents:,} documents, {len(report.indexed_ids):,}"
        f" distinct ids, {len(report.expected_ids):,} expected;"
        f" missing {len(report.expected_ids - report.indexed_ids)},"
        f" unexpected {len(report.indexed_ids - report.expected_ids)}",
        f"- alerts: {report.alert_documents:,} documents, {len(report.alert_ids):,} distinct,"
        f" {len(report.expected_alert_ids):,} expected;"
        f" missing {len(report.expected_alert_ids - report.alert_ids)},"
        f" unexpected {len(report.alert_ids - report.expected_alert_ids)}",
        "",
        "| lost | at | back after |",
        "| --- | ---: | ---: |",
    ]
    for phase in report.phases:
        back = f"{phase.back_at - phase.killed_at:.0f} s" if phase.back_at else "not restarted"
        rows.append(f"| {phase.name} | {phase.killed_at:.0f} s | {back} |")
    return "\n".join(rows)


if __name__ == "__main__":
    os.chdir(REPO)
    main()

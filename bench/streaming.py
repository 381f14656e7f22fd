"""End-to-end benchmark of the streaming pipeline on the local Kafka and Elasticsearch.

    scripts/services.sh up && .venv/bin/python -m bench.streaming [--quick] [--rounds N]

0. The bulk-only ceiling: the documents the pipeline indexes (the same lines through the same
   collector code, with their ids and daily index) sent to Elasticsearch alone, already
   encoded as bulk requests, by a client that costs nearly nothing (raw HTTP, a few
   connections). Its docs/s is what this machine can index with nothing else running; the
   pipeline's end-to-end rate divided by it is the share of the machine the pipeline leaves
   to Elasticsearch's indexing.
1. Saturation: ``socpipe run`` and ``socpipe collect file`` start and join their groups,
   then N lines are appended at once to the file the collector follows (a burst reaching a
   running pipeline); events/s = N / time from the append until all N are durably indexed
   (Elasticsearch accepted them; see Pipeline.indexed_everything, polled every 0.1 s). Done
   for each daemon layout (LAYOUTS), with the CPU each component spent meanwhile.
2. Latency: lines are appended to a followed file at a fixed rate (half of the layout's
   saturation rate, and the fixed rates of earlier runs), every 100th an attack;
   latency = time its alert becomes searchable (polled ten times a second for alerts not seen
   yet, no forced refresh, so Elasticsearch's 1 s refresh interval is part of it) minus the
   time the line was written.
Each run uses its own topics and indices, removed afterwards. ``--rounds`` repeats the ceiling
and the saturation runs in rounds (the VM's speed wanders): the best and slowest are reported.
Results go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import yaml
from elasticsearch import ApiError
from kafka import KafkaConsumer
from kafka.admin import KafkaAdminClient

from bench.cluster import syslog_time
from bench.names import isolated
from bench.report import write_section
from socpipe.collectors.follow import FileFollower
from socpipe.collectors.parsers import ParseContext
from socpipe.core import envelope
from socpipe.core.config import Config, ElasticsearchConfig, load_config
from socpipe.core.kafka_clients import committed_to_end, ensure_topics
from socpipe.sinks.elasticsearch import Document, connect, events_index, install_templates

REPO = Path(__file__).resolve().parent.parent
BENIGN = "{t} web01 sshd[{n}]: Accepted publickey for deploy from 10.20.1.{h} port {p} ssh2"
ATTACK = "{t} web01 sshd[{n}]: Accepted password for root from 203.0.113.{h} port {p} ssh2"


def run_config(base: Config) -> Config:
    """Topics, groups and indices of one run alone; one events topic (the collector's
    payload names the agency)."""
    config = isolated(base, "b" + uuid.uuid4().hex[:8])
    return replace(config, kafka=replace(config.kafka, event_topics="single"))


class Pipeline:
    """The daemon and a file collector as separate processes, as in production."""

    def __init__(self, config: Config, folder: Path, daemons: list[str]) -> None:
        self.config, self.folder, self.daemons = config, folder, daemons
        ensure_topics(config.kafka)
        self.es = connect(config.elasticsearch)
        install_templates(self.es, config.elasticsearch)
        self.config_file = folder / "socpipe.yml"
        self.config_file.write_text(yaml.safe_dump(asdict(config)))
        self.log = folder / "bench.log"
        self.processes: list[subprocess.Popen] = []
        self.alerts_seen: list[str] = []
        #: Reads the index group's offsets at the end of a run (one client for every check).
        self.index_offsets: KafkaConsumer | None = None

    def start(self, glob: str) -> None:
        self.start_daemons()
        self.start_collector(glob)

    def start_daemons(self) -> None:
        base = [sys.executable, str(REPO / "pipeline.py")]
        with self.log.open("a") as log:
            self.processes.extend(
                subprocess.Popen(
                    [*base, "run", "--config", str(self.config_file), "--stages", stages],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
                for stages in self.daemons
            )

    def start_collector(self, glob: str) -> None:
        base = [sys.executable, str(REPO / "pipeline.py")]
        with self.log.open("a") as log:
            self.processes.append(
                subprocess.Popen(
                    [
                        *base,
                        "collect",
                        "file",
                        "--config",
                        str(self.config_file),
                        "--glob",
                        glob,
                        "--state",
                        str(self.folder / "state.json"),
                        "--agency",
                        "bench",
                        # The configured metrics port is the daemon's (bench.soak reads it).
                        "--metrics-port",
                        "0",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )

    def indexed_everything(self, path: Path, lines: int) -> bool:
        """Every line of ``path`` is durably in Elasticsearch: the collector has had all of it
        acknowledged by Kafka (its saved position is the file's end), the index stage has
        committed the whole events topic (it commits only after Elasticsearch accepted a
        batch), and a count after one refresh finds them all. No refresh is forced before
        that, so the events indices' refresh interval weighs on the run as in production."""
        try:
            saved = json.loads((self.folder / "state.json").read_text())
        except (OSError, ValueError):
            return False
        if saved.get(str(path), {}).get("offset", 0) < path.stat().st_size:
            return False
        if self.index_offsets is None:
            self.index_offsets = KafkaConsumer(
                group_id=self.config.stages.index_group,
                enable_auto_commit=False,
                **self.config.kafka.client_options(),
            )
        if not committed_to_end(self.index_offsets, self.config.kafka.topics.events):
            return False
        index = f"{self.config.elasticsearch.events_index_prefix}*"
        self.es.indices.refresh(index=index, ignore_unavailable=True)
        return self.count(index) >= lines

    def count(self, index: str) -> int:
        try:
            return self.es.count(index=index, ignore_unavailable=True)["count"]
        except ApiError as error:
            if error.meta.status != 503:
                raise
            return 0  # a daily index just created, its shard not started yet

    def stop(self) -> None:
        if self.index_offsets is not None:
            self.index_offsets.close()
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            process.wait(timeout=120)
        settings = self.config.elasticsearch
        single = (settings.alerts_index, settings.incidents_index, settings.forwarding_index)
        self.es.indices.delete(
            index=",".join((f"{settings.events_index_prefix}*", *single)),
            ignore_unavailable=True,
        )
        for name in (f"{settings.events_index_prefix}template", *(f"{i}-template" for i in single)):
            self.es.indices.delete_index_template(name=name)
        admin = KafkaAdminClient(**self.config.kafka.client_options())
        topics = self.config.kafka.topics
        admin.delete_topics(
            [topics.events, topics.alerts, topics.deadletter, topics.incidents, topics.forwarding]
        )
        admin.close()


class _Collected:
    """A collector's publisher that keeps each event as the document the index stage makes
    of it instead of sending it to Kafka (as it comes: a million decoded events held at
    once took about ten gigabytes)."""

    def __init__(self, settings: ElasticsearchConfig) -> None:
        self.settings = settings
        self.documents: list[Document] = []

    def publish(self, event: dict[str, Any]) -> None:
        index = events_index(self.settings, str(event["@timestamp"]))
        self.documents.append(Document(index, str(event["event.id"]), envelope.encode(event)))

    def confirm(self) -> int:
        return 0


def collected_documents(path: Path, folder: Path, settings: ElasticsearchConfig) -> list[Document]:
    """The documents the pipeline indexes for the lines of ``path``: read by the file
    collector's own code (parsing, ids, agency), encoded as the collector encodes them, with
    the index and id the index stage gives them."""
    collected = _Collected(settings)
    follower = FileFollower(
        [str(path)], folder / "ceiling-state.json", collected, ParseContext("bench")
    )
    while follower.poll_once():
        pass
    return collected.documents


def bulk_bodies(documents: list[Document], per_request: int) -> list[bytes]:
    """Bulk request bodies of ``per_request`` documents: an action line and the source each."""
    bodies = []
    for start in range(0, len(documents), per_request):
        parts = []
        for document in documents[start : start + per_request]:
            action = {"create": {"_index": document.index, "_id": document.id}}
            parts += [json.dumps(action).encode(), b"\n", document.source, b"\n"]
        bodies.append(b"".join(parts))
    return bodies


def ceiling(base: Config, lines: int, connections: int, template_dir: Path | None = None) -> dict:
    """Elasticsearch alone indexing the pipeline's documents as fast as it can: docs/s from
    the first request to the last acknowledgement (every document created), and its CPU."""
    config = run_config(base)
    settings = config.elasticsearch
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "auth.log"
        path.write_text(lines_now(lines))
        documents = collected_documents(path, Path(folder), settings)
    bodies = bulk_bodies(documents, settings.bulk_max_docs)
    client = connect(settings)
    install_templates(client, settings, template_dir)
    host = urllib.parse.urlsplit(settings.hosts[0])
    pending = iter(bodies)
    created = [0] * connections
    lock = threading.Lock()

    def send(slot: int) -> None:
        connection = http.client.HTTPConnection(
            host.hostname or "127.0.0.1", host.port or 9200, timeout=120
        )
        while True:
            with lock:
                body = next(pending, None)
            if body is None:
                break
            connection.request("POST", "/_bulk", body, {"Content-Type": "application/x-ndjson"})
            answer = orjson.loads(connection.getresponse().read())
            if answer["errors"]:
                failed = [item for item in answer["items"] if item["create"]["status"] != 201]
                raise RuntimeError(f"bulk refused {len(failed)} documents: {failed[:1]}")
            created[slot] += len(answer["items"])
        connection.close()

    services = service_pids()
    before = {name: cpu_seconds(pid) for name, pid in services.items()}
    started = time.monotonic()
    threads = [threading.Thread(target=send, args=(slot,)) for slot in range(connections)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.monotonic() - started
        cpu = services_cpu(services, before)
    finally:
        tag = settings.events_index_prefix.split("-", 1)[0]  # run_config(): every name has it
        client.indices.delete(index=f"{tag}-*", ignore_unavailable=True)
        client.indices.delete_index_template(name=f"{tag}-*")
    if sum(created) != len(documents):
        raise RuntimeError(f"ceiling run created {sum(created)} of {len(documents)} documents")
    return {
        "docs": len(documents),
        "seconds": seconds,
        "rate": len(documents) / seconds,
        "cpu": cpu,
    }


def line(number: int, stamp: str | None = None) -> str:
    """Line ``number``, dated ``stamp`` (syslog's time to the second), by default now: a live
    collector's lines are current (a line dated months back is re-dated to its receipt and
    tagged, work a real stream does not cause)."""
    template = ATTACK if number % 100 == 0 else BENIGN
    if stamp is None:
        stamp = syslog_time(datetime.now(UTC))
    return template.format(t=stamp, n=number, h=number % 250 + 1, p=number % 60000 + 1)


def lines_now(count: int) -> str:
    """``count`` lines written at once, as a busy host writes them: all in the same second."""
    stamp = syslog_time(datetime.now(UTC))
    return "".join(line(number, stamp) + "\n" for number in range(count))


#: How the daemon's stages are spread over processes (each process is one Python interpreter,
#: so one core at most: stages in separate processes can use both cores).
LAYOUTS = {
    "one daemon process (detect + index)": ["detect,index"],
    "one process per stage (detect; index)": ["detect", "index"],
}


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def services_cpu(services: dict[str, int], before: dict[str, float]) -> dict[str, float]:
    """CPU each service spent since ``before``; a service restarted meanwhile (by another user
    of this shared machine) is left out rather than reported wrong."""
    spent = {}
    for name, pid in services.items():
        try:
            spent[name] = cpu_seconds(pid) - before[name]
        except OSError:
            continue
    return spent


def service_pids() -> dict[str, int]:
    """The Kafka and Elasticsearch JVMs of scripts/services.sh, where it runs them."""
    root = Path(os.environ.get("SOCPIPE_SERVICES_DIR", "/var/lib/socpipe-services"))
    found = {}
    for name, pidfile in (
        ("Kafka", root / "kafka" / "kafka.pid"),
        ("Elasticsearch", root / "es" / "es.pid"),
    ):
        try:
            pid = int(pidfile.read_text())
            cpu_seconds(pid)
        except (OSError, ValueError):
            continue
        found[name] = pid
    return found


def saturation(base: Config, lines: int, daemons: list[str]) -> dict:
    """Events/s from the moment N lines are appended to the file a running collector follows
    until the last of them is indexed (the daemon and the collector are started, and have
    joined their groups, first: a streaming pipeline is running when a burst arrives), and
    the CPU each component spent per event meanwhile."""
    with tempfile.TemporaryDirectory() as folder:
        pipeline = Pipeline(run_config(base), Path(folder), daemons)
        path = Path(folder) / "auth.log"
        path.touch()
        pipeline.start(str(path))
        time.sleep(8)  # processes up and groups joined before the clock starts
        burst = lines_now(lines)  # dated now, as a live stream's lines are
        services = service_pids()
        services_before = {name: cpu_seconds(pid) for name, pid in services.items()}
        processes_before = [cpu_seconds(process.pid) for process in pipeline.processes]
        started = time.monotonic()
        with path.open("a") as handle:
            handle.write(burst)
        try:
            while not pipeline.indexed_everything(path, lines):
                time.sleep(0.1)
                if time.monotonic() - started > 1800:
                    raise TimeoutError("saturation run did not finish in 30 minutes")
            seconds = time.monotonic() - started
            names = [*(f"daemon ({stages})" for stages in daemons), "file collector"]
            cpu = {
                name: cpu_seconds(process.pid) - before
                for name, process, before in zip(
                    names, pipeline.processes, processes_before, strict=True
                )
            }
            cpu.update(services_cpu(services, services_before))
        finally:
            pipeline.stop()
    return {"lines": lines, "seconds": seconds, "rate": lines / seconds, "cpu": cpu}


def latency(base: Config, rate: int, seconds: int, daemons: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        pipeline = Pipeline(run_config(base), Path(folder), daemons)
        path = Path(folder) / "auth.log"
        path.touch()
        pipeline.start(str(path))
        time.sleep(8)  # processes up and groups joined before the clock starts
        alerts_index = pipeline.config.elasticsearch.alerts_index
        written: dict[int, float] = {}
        seen: dict[int, float] = {}
        total = rate * seconds
        started = time.monotonic()
        offset = 0
        try:
            with path.open("a") as handle:
                for number in range(total):
                    target = started + number / rate
                    while (now := time.monotonic()) < target:
                        time.sleep(min(target - now, 0.01))
                    text = line(number) + "\n"
                    handle.write(text)
                    handle.flush()
                    if number % 100 == 0:
                        written[offset] = time.monotonic()
                    offset += len(text)
                    if number % max(rate // 10, 1) == 0:
                        _poll(pipeline, alerts_index, seen)
            achieved = total / (time.monotonic() - started)
            deadline = time.monotonic() + 60
            while len(seen) < len(written) and time.monotonic() < deadline:
                _poll(pipeline, alerts_index, seen)
                time.sleep(0.1)
        finally:
            pipeline.stop()
    delays = sorted(seen[offset] - written[offset] for offset in written if offset in seen)
    return {
        "rate": rate,
        "achieved": achieved,
        "alerts": len(delays),
        "expected": len(written),
        "p50": statistics.median(delays) if delays else float("nan"),
        "p99": delays[min(len(delays) - 1, int(len(delays) * 0.99))] if delays else float("nan"),
    }


def _poll(pipeline: Pipeline, index: str, seen: dict[int, float]) -> None:
    """Record when alerts first became searchable. Only alerts not seen before are fetched:
    fetching all of them ten times a second loaded Elasticsearch enough to move the numbers."""
    now = time.monotonic()
    response = pipeline.es.search(
        index=index,
        size=10_000,
        source_includes=["events"],
        query={"bool": {"must_not": {"ids": {"values": pipeline.alerts_seen}}}},
        ignore_unavailable=True,
    )
    for hit in response["hits"]["hits"]:
        pipeline.alerts_seen.append(hit["_id"])
        offset = hit["_source"]["events"][0]["log.offset"]
        seen.setdefault(offset, now)


#: Bulk requests the ceiling run keeps in flight: as many as the index stages of the layouts
#: together (two each), and more did not index faster.
CEILING_CONNECTIONS = 4


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--lines",
        type=int,
        default=None,
        help="lines per saturation and ceiling run (default 1,000,000; --quick 20,000): runs"
        " of several seconds at least, so Elasticsearch's merges and refreshes fall inside"
        " the ceiling's clock as they do inside the pipeline's",
    )
    parser.add_argument("--note", default="", help="a line on the machine's load, for the record")
    args = parser.parse_args()
    base = load_config()
    lines = args.lines or (20_000 if args.quick else 1_000_000)
    seconds = 10 if args.quick else 30
    ceilings: list[dict] = []
    runs: dict[str, list[dict]] = {layout: [] for layout in LAYOUTS}
    for round_number in range(args.rounds):
        ceilings.append(ceiling(base, lines, CEILING_CONNECTIONS))
        print(f"round {round_number + 1}: ceiling {ceilings[-1]['rate']:,.0f} docs/s", flush=True)
        for layout, daemons in LAYOUTS.items():
            runs[layout].append(saturation(base, lines, daemons))
            print(
                f"round {round_number + 1}: {layout} {runs[layout][-1]['rate']:,.0f}/s", flush=True
            )
    rows = saturation_rows(lines, ceilings, runs)
    rows += [
        "",
        "Latency: lines appended at half of the layout's best saturation rate, every 100th an"
        " attack, for 30 s.",
        "",
        "| daemon layout | offered lines/s | written lines/s | alerts seen / expected |"
        " p50 line→searchable alert | p99 |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for layout, daemons in LAYOUTS.items():
        rate = int(max(run["rate"] for run in runs[layout]) / 2)
        result = latency(base, rate, seconds, daemons)
        rows.append(
            f"| {layout} | {rate:,} | {result['achieved']:,.0f} |"
            f" {result['alerts']} / {result['expected']} | {result['p50']:.2f} s |"
            f" {result['p99']:.2f} s |"
        )
        print(rows[-1], flush=True)
    if args.quick:
        return
    header = [
        f"- Date: {time.strftime('%Y-%m-%d')}; machine as above; Kafka 4.1.1 and Elasticsearch"
        " 9.5.0 (768 MB heap) on the same 2 cores, one file collector; the daemon's stages in"
        " one process or one process each",
        "- Command: `scripts/services.sh up && .venv/bin/python -m bench.streaming"
        f"{f' --lines {args.lines}' if args.lines else ''}`",
        *([f"- {args.note}"] if args.note else []),
        "",
    ]
    write_section("bench.streaming", [*header, *rows], "## Streaming pipeline (bench/streaming.py)")


def saturation_rows(lines: int, ceilings: list[dict], runs: dict[str, list[dict]]) -> list[str]:
    """The ceiling, each layout's rate and its ratio to the ceiling of the same round, and
    the CPU per event of each component (median over the rounds)."""
    rates = [run["rate"] for run in ceilings]
    rows = [
        f"Saturation: {lines:,} lines appended at once to the file a running collector follows,"
        " timed until the last is indexed (detected too); the"
        " bulk-only ceiling: the same documents sent to Elasticsearch alone"
        f" ({CEILING_CONNECTIONS} bulk requests in flight). {len(ceilings)} rounds, each a"
        " ceiling run then one run per layout; the ratio is a layout's rate over the ceiling"
        " of its round (measured minutes apart, so the VM's wandering speed weighs on both).",
        "",
        "| run | events/s (best) | slowest | best over the best ceiling | ratio to its round's"
        " ceiling: median | best | lowest |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| bulk-only ceiling (Elasticsearch alone) | **{max(rates):,.0f}** | {min(rates):,.0f}"
        " | 1 | 1 | 1 | 1 |",
    ]
    budgets = []
    for layout, measured in runs.items():
        ratios = [
            run["rate"] / bound["rate"] for run, bound in zip(measured, ceilings, strict=True)
        ]
        best = max(run["rate"] for run in measured)
        rows.append(
            f"| {layout} | **{best:,.0f}** | {min(run['rate'] for run in measured):,.0f}"
            f" | **{best / max(rates):.2f}** | **{statistics.median(ratios):.2f}**"
            f" | {max(ratios):.2f} | {min(ratios):.2f} |"
        )
        for component in measured[0]["cpu"]:
            spent = [run["cpu"][component] for run in measured if component in run["cpu"]]
            budgets.append(
                f"| {layout} | {component} | {1e6 * statistics.median(spent) / lines:.0f} |"
            )
    ceiling_cpu = [
        f"| bulk-only ceiling | {name} |"
        f" {1e6 * statistics.median(r['cpu'][name] for r in ceilings if name in r['cpu']) / lines:.0f} |"
        for name in ceilings[0]["cpu"]
    ]
    return [
        *rows,
        "",
        "CPU per event of each component (median over the rounds; the machine has 2 cores):",
        "",
        "| run | component | CPU µs per event |",
        "| --- | --- | ---: |",
        *ceiling_cpu,
        *budgets,
    ]


if __name__ == "__main__":
    os.chdir(REPO)
    main()

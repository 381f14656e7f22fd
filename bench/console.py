"""Console latency over a queue of 100,000 alerts: filtering and grouping, at the server.

    scripts/services.sh up && .venv/bin/python -m bench.console [--alerts 100000] [--runs 30]

Indexes synthetic alerts (20 agencies, 60 rules, 2,000 hosts, a month of event times, three
in four closed, each with its matched event) into indices of its own, starts the console on a
loopback port in this process and times requests through HTTP for a central analyst and an
agency analyst: the JSON API and the HTML page, each scenario ``--runs`` times after three
warm-up requests. The time is the request's at the server (measured by the client on the same
machine, so it includes rendering and the loopback hop). Results go to docs/benchmarks.md;
the indices are deleted afterwards.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import random
import statistics
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from typing import Any

from elasticsearch import helpers

from bench.report import write_section
from socpipe.console import cli
from socpipe.core.config import Config, load_config
from socpipe.sinks.elasticsearch import connect, install_templates
from tests.integration.console_app import PASSWORD, login, running_console

TARGET_MS = 300.0
RULE_KINDS = ["SSH Brute Force", "SQL Injection", "Encoded PowerShell", "Port Scan", "Root Login"]
LEVELS = [("low", 30), ("medium", 40), ("high", 22), ("critical", 8)]
STATUSES = [("closed", 75), ("new", 15), ("acknowledged", 6), ("in_progress", 4)]
RESOLUTIONS = ["true_positive", "false_positive", "benign"]
SCENARIOS = [
    ("queue: open alerts, newest first (50 rows)", {}),
    (
        "filter: level high+critical, one agency, last 7 days",
        {"level": ["high", "critical"], "agency": ["so-agency-03"], "since": ["now-7d"]},
    ),
    (
        "query: user.name:root and not source.ip:10.0.0.0/8",
        {"q": ["user.name:root and not source.ip:10.0.0.0/8"]},
    ),
    ("query: free text 'brute' (wildcards over 5 fields)", {"q": ["brute"]}),
    (
        "filter incl. closed: host and assignee",
        {"closed": ["1"], "host": ["host-0042"], "assignee": ["-"]},
    ),
    ("group by rule (open)", {"group": ["rule"]}),
    ("group by host, incl. closed (all 100k)", {"group": ["host"], "closed": ["1"]}),
    ("group by agency, incl. closed", {"group": ["agency"], "closed": ["1"]}),
]


def weighted(rng: random.Random, choices: list[tuple[str, int]]) -> str:
    return rng.choices([c for c, _ in choices], [w for _, w in choices])[0]


def synthetic_alerts(count: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    end = datetime.now(UTC).replace(microsecond=0)
    rules = [
        (
            f"rule-{n:02d}",
            f"Rule {n:02d} {rng.choice(RULE_KINDS)}",
        )
        for n in range(60)
    ]
    for number in range(count):
        rule_id, rule_name = rng.choice(rules)
        moment = end - timedelta(seconds=rng.randrange(30 * 86400))
        stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        status = weighted(rng, STATUSES)
        ident = hashlib.blake2b(f"{number}".encode(), digest_size=16).hexdigest()
        source_ip = (
            f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
            if rng.random() < 0.5
            else f"203.0.113.{rng.randrange(1, 255)}"
        )
        host = f"host-{rng.randrange(2000):04d}"
        user = rng.choice(["root", "admin", "deploy", "backup", f"user{rng.randrange(500)}"])
        document: dict[str, Any] = {
            "@timestamp": stamp,
            "event.kind": "alert",
            "event.severity": 3,
            "alert.id": ident,
            "alert.status": status,
            "alert.first_seen": stamp,
            "alert.last_seen": stamp,
            "alert.detected": stamp,
            "rule.id": rule_id,
            "rule.name": rule_name,
            "rule.level": weighted(rng, LEVELS),
            "tags": ["attack.credential_access", "attack.t1110"],
            "threat.technique.id": ["T1110"],
            "organization.id": f"so-agency-{rng.randrange(20):02d}",
            "host.name": host,
            "user.name": user,
            "source.ip": source_ip,
            "events": [
                {
                    "event.original": f"Mar  3 10:00:00 {host} sshd[1]: Failed password"
                    f" for {user} from {source_ip} port 22 ssh2"
                }
            ],
        }
        if status == "closed":
            document["alert.resolution"] = rng.choice(RESOLUTIONS)
        if status != "new" and rng.random() < 0.7:
            document["alert.assignee"] = rng.choice(["huongtt", "namnv", "lanpt"])
        yield document


def index_alerts(config: Config, count: int) -> float:
    client = connect(config.elasticsearch)
    index = config.elasticsearch.alerts_index
    started = time.monotonic()
    actions = (
        {"_op_type": "create", "_index": index, "_id": doc["alert.id"], "_source": doc}
        for doc in synthetic_alerts(count)
    )
    for ok, item in helpers.streaming_bulk(client, actions, chunk_size=2000, raise_on_error=False):
        if not ok:
            raise RuntimeError(f"indexing failed: {item}")
    client.indices.refresh(index=index)
    client.indices.forcemerge(index=index, max_num_segments=1)
    return time.monotonic() - started


def measure(client: Any, path: str, params: dict[str, list[str]], runs: int) -> list[float]:
    query = [(k, v) for k, values in params.items() for v in values]
    for _ in range(3):
        client.get(path, params=query).raise_for_status()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(path, params=query)
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return times


def machine() -> str:
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass

    return f"{model}, {len(os.sched_getaffinity(0))} cores; {platform.platform()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--no-write", action="store_true", help="print, do not update docs/")
    args = parser.parse_args()
    base = load_config()
    tag = f"bench-console-{uuid.uuid4().hex[:8]}"
    config = replace(
        base,
        elasticsearch=replace(
            base.elasticsearch,
            alerts_index=f"{tag}-alerts",
            events_index_prefix=f"{tag}-events-",
            console_index_prefix=f"{tag}-console-",
        ),
    )
    es = connect(config.elasticsearch)
    install_templates(es, config.elasticsearch)
    try:
        seconds = index_alerts(config, args.alerts)
        print(f"indexed {args.alerts:,} alerts in {seconds:.1f} s")
        cli.users_add(config, "central", "central-analyst", None, PASSWORD)
        cli.users_add(config, "agency", "agency-analyst", "so-agency-03", PASSWORD)
        rows = []
        with running_console(config) as app:
            for user in ("central", "agency"):
                with app.client() as client:
                    login(client, user)
                    for name, params in SCENARIOS:
                        if user == "agency" and "agency" in str(params):
                            continue
                        for kind, path in (("API", "/api/v1/alerts"), ("page", "/alerts")):
                            times = measure(client, path, params, args.runs)
                            rows.append((user, name, kind, times))
                            p50, p95 = statistics.median(times), percentile(times, 95)
                            print(f"{user:8} {kind:4} {name:55} p50 {p50:6.1f}  p95 {p95:6.1f} ms")
        nodes = es.nodes.info(filter_path="nodes.*.version")["nodes"]
        versions = ", ".join(sorted({node["version"] for node in nodes.values()}))
    finally:
        es.indices.delete(index=f"{tag}-*", ignore_unavailable=True)
        es.indices.delete_index_template(name=f"{tag}-*")
    worst = max(percentile(times, 95) for *_, times in rows)
    lines = [
        f"Measured {datetime.now(UTC):%Y-%m-%d} on {machine()}, with Kafka and Elasticsearch"
        f" {versions} (768 MB heap, single node) on the same two cores, shared with other work.",
        f"Python {platform.python_version()}, fastapi {version('fastapi')}, uvicorn"
        f" {version('uvicorn')}, elasticsearch-py {version('elasticsearch')}.",
        f"Command: `.venv/bin/python -m bench.console --alerts {args.alerts} --runs {args.runs}`"
        f" ({args.alerts:,} alerts indexed in {seconds:.0f} s; {args.runs} timed requests per"
        " row after 3 warm-ups; milliseconds at the server, measured over loopback).",
        "",
        "| user | request | answer | p50 ms | p95 ms | max ms |",
        "| --- | --- | --- | ---: | ---: | ---: |",
    ]
    for user, name, kind, times in rows:
        lines.append(
            f"| {user} | {name} | {kind} | {statistics.median(times):.1f} |"
            f" {percentile(times, 95):.1f} | {max(times):.1f} |"
        )
    verdict = "met" if worst < TARGET_MS else "NOT met"
    lines += [
        "",
        f"Target: filter and group under {TARGET_MS:.0f} ms at the server: {verdict}"
        f" (slowest p95 {worst:.1f} ms).",
    ]
    print("\n".join(lines))
    if not args.no_write:
        written = write_section("console", lines, "## Console (bench/console.py)")
        print(f"results written to {written}")


def percentile(values: list[float], wanted: float) -> float:
    ordered = sorted(values)
    position = min(len(ordered) - 1, max(0, round(wanted / 100 * (len(ordered) - 1))))
    return ordered[position]


if __name__ == "__main__":
    main()

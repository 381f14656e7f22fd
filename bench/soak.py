"""The daemon over a long run: is its memory flat?

    scripts/services.sh up && .venv/bin/python -m bench.soak [--minutes 60] [--rate 300]

A file collector follows a log that grows at a steady rate with today's timestamps: SSH
logins and failures from a large, rotating pool of addresses (so correlation groups are
created all the time and must expire), some brute forces, some root logins. The daemon runs
detect and index as in production. Every 30 s the resident memory (RSS) of the daemon and
the collector is sampled, with the state the detect stage reports on its metrics endpoint
(open incidents and their estimated bytes, incident evidence links, correlation groups and
bytes): memory that rises
beside a bounded state still filling is not a leak. At the end every line must be indexed.
Results go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import random
import re
import signal
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path

from bench.report import write_section
from bench.restart import free_port
from bench.streaming import Pipeline, run_config
from socpipe.core.config import load_config

SAMPLE_EVERY_SECS = 30
#: The detect stage's gauges of what it holds in memory, as the soak's columns name them.
STATE_GAUGES = {
    "incidents": "socpipe_incidents_open",
    "incidents_mib": "socpipe_incident_state_bytes",
    "links": "socpipe_incident_links",
    "groups": "socpipe_correlation_groups",
    "correlation_mib": "socpipe_correlation_state_bytes",
}


@dataclass(frozen=True)
class Sample:
    minute: float
    daemon_mib: float
    collector_mib: float
    state: dict[str, float]


def rss_mib(pid: int) -> float:
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith("VmRSS:"):
            return int(row.split()[1]) / 1024
    return float("nan")


def daemon_state(port: int) -> dict[str, float]:
    """The state gauges from the daemon's /metrics (NaN for one not reported yet)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    state = {}
    for column, gauge in STATE_GAUGES.items():
        found = re.search(rf"^{gauge} (\S+)$", text, re.M)
        state[column] = float(found.group(1)) if found else float("nan")
    state["correlation_mib"] /= 1 << 20
    state["incidents_mib"] /= 1 << 20
    return state


def log_line(number: int, rng: random.Random) -> str:
    stamp = time.strftime("%b %e %H:%M:%S")
    source = f"198.51.{rng.randint(0, 199)}.{rng.randint(1, 254)}"
    if number % 500 == 0:
        return (
            f"{stamp} web01 sshd[{number}]: Accepted password for root from {source} port 22 ssh2"
        )
    if number % 3 == 0:
        user = rng.choice(("admin", "oracle", "test", "ubuntu", "deploy"))
        return (
            f"{stamp} web01 sshd[{number}]: Failed password for {user} from {source} port 22 ssh2"
        )
    host, address = f"web0{number % 4}", f"10.20.1.{number % 250}"
    return (
        f"{stamp} {host} sshd[{number}]: Accepted publickey for deploy from {address} port 22 ssh2"
    )


def soak(minutes: float, rate: int) -> tuple[list[Sample], int, int, float]:
    rng = random.Random(7)
    samples: list[Sample] = []
    config = run_config(load_config())
    port = free_port()
    config = replace(config, metrics=replace(config.metrics, port=port))
    with tempfile.TemporaryDirectory() as folder:
        pipeline = Pipeline(config, Path(folder), ["detect,index"])
        path = Path(folder) / "auth.log"
        path.touch()
        pipeline.start(str(path))
        daemon, collector = (process.pid for process in pipeline.processes)
        time.sleep(8)
        events_index = f"{pipeline.config.elasticsearch.events_index_prefix}*"
        started = time.monotonic()
        next_sample = started
        written = 0
        try:
            with path.open("a") as handle:
                while (elapsed := time.monotonic() - started) < minutes * 60:
                    due = int(elapsed * rate)
                    while written < due:
                        handle.write(log_line(written, rng) + "\n")
                        written += 1
                    handle.flush()
                    if time.monotonic() >= next_sample:
                        sample = Sample(
                            elapsed / 60, rss_mib(daemon), rss_mib(collector), daemon_state(port)
                        )
                        samples.append(sample)
                        print(
                            f"{sample.minute:6.1f} min  daemon {sample.daemon_mib:6.1f} MiB"
                            f"  collector {sample.collector_mib:6.1f} MiB  lines {written:,}  "
                            + "  ".join(f"{k} {v:,.0f}" for k, v in sample.state.items()),
                            flush=True,
                        )
                        next_sample += SAMPLE_EVERY_SECS
                    time.sleep(0.05)
            deadline = time.monotonic() + 600
            while pipeline.count(events_index) < written and time.monotonic() < deadline:
                time.sleep(2)
            pipeline.es.indices.refresh(index=events_index)
            indexed = pipeline.count(events_index)
            catch_up = time.monotonic() - started - minutes * 60
        finally:
            pipeline.stop()
    return samples, written, indexed, catch_up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--rate", type=int, default=300)
    args = parser.parse_args()
    # Stopped early (SIGTERM), still remove the run's topics and indices.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    samples, written, indexed, catch_up = soak(args.minutes, args.rate)
    marks = [samples[0]] + [s for s in samples if s.minute >= 5 and round(s.minute * 2) % 10 == 0]
    rows = [
        f"- Date: {time.strftime('%Y-%m-%d')}; machine and services as above; one daemon (detect +"
        " index, all project rules and correlations) and one file collector",
        f"- Command: `scripts/services.sh up && .venv/bin/python -m bench.soak --minutes"
        f" {args.minutes:g} --rate {args.rate}`",
        f"- {written:,} lines written at {args.rate}/s over {args.minutes:g} min; {indexed:,}"
        f" indexed ({'all' if indexed == written else 'NOT all'}), {catch_up:.0f} s after the"
        " last line",
        "",
        "| minute | daemon RSS MiB | collector RSS MiB | open incidents | incidents MiB"
        " (estimated) | incident links | correlation groups | correlation state MiB |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *(
            f"| {s.minute:.0f} | {s.daemon_mib:.0f} | {s.collector_mib:.0f}"
            f" | {s.state['incidents']:,.0f} | {s.state['incidents_mib']:.0f}"
            f" | {s.state['links']:,.0f}"
            f" | {s.state['groups']:,.0f} | {s.state['correlation_mib']:.0f} |"
            for s in marks
        ),
        "",
        f"Daemon RSS: first sample {samples[0].daemon_mib:.0f} MiB, maximum"
        f" {max(s.daemon_mib for s in samples):.0f} MiB, last {samples[-1].daemon_mib:.0f} MiB.",
    ]
    print("\n".join(rows))
    write_section("bench.soak", rows, "## Daemon memory over a long run (bench/soak.py)")


if __name__ == "__main__":
    main()

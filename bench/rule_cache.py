"""Start-up of a small scan with a large rule set, with and without the rule cache.

    .venv/bin/python -m bench.rule_cache [--rounds 7] [--rules DIR] [--file FILE]

Each run is the installed ``socpipe`` command in a fresh process, timed from spawn to exit
(what an analyst waits for), scanning one small file (default the 7-record
``tests/files/security_sample.evtx``) with a large rule set (default the SigmaHQ Windows
rules of ../shared/data): once with an empty cache folder (cold: rules parsed, compiled and
stored), then with the entry it wrote (warm), then with ``--no-rule-cache`` (what every
scan cost before the cache). Runs go in rounds, so a slow period of this shared VM does not
take all runs of one kind; the table has the median, the fastest and the slowest, and the CPU
time (user + system) of the median run. Results go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from bench.paths import REPO, SHARED
from bench.report import write_section

HEADING = "## Start-up with the rule cache (bench/rule_cache.py)"
KINDS = ("cold cache", "warm cache", "--no-rule-cache")
SAMPLE = REPO / "tests" / "files" / "security_sample.evtx"


@dataclass(frozen=True)
class Run:
    wall: float
    cpu: float


def timed(command: list[str], environment: dict[str, str]) -> Run:
    """Wall and CPU seconds of one command run to its end (it must succeed)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, env=environment, check=True, capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Run(wall, cpu)


def measure(rules: Path, sample: Path, rounds: int) -> dict[str, list[Run]]:
    socpipe = str(REPO / ".venv" / "bin" / "socpipe")
    # Every rule (no SigmaHQ profile): the full set is what start-up is judged on.
    scan = [socpipe, "scan", str(sample), "--rules", str(rules), "--rules-profile", "none"]
    scan.append("--no-progress")
    runs: dict[str, list[Run]] = {kind: [] for kind in KINDS}
    with tempfile.TemporaryDirectory() as folder:
        cache = Path(folder) / "cache"
        environment = {**os.environ, "SOCPIPE_CACHE_DIR": str(cache)}
        for _ in range(rounds):
            shutil.rmtree(cache, ignore_errors=True)
            runs["cold cache"].append(timed(scan, environment))
            runs["warm cache"].append(timed(scan, environment))
            runs["--no-rule-cache"].append(timed([*scan, "--no-rule-cache"], environment))
    return runs


def rows(runs: dict[str, list[Run]]) -> list[str]:
    table = [
        "| scan of one small file | median wall s | fastest | slowest | CPU s (median run) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for kind, measured in runs.items():
        ordered = sorted(measured, key=lambda run: run.wall)
        median = ordered[len(ordered) // 2]
        table.append(
            f"| {kind} | {statistics.median(run.wall for run in measured):.2f}"
            f" | {ordered[0].wall:.2f} | {ordered[-1].wall:.2f} | {median.cpu:.2f} |"
        )
    return table


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--rules", type=Path, default=SHARED / "sigma" / "rules" / "windows")
    parser.add_argument(
        "--file", type=Path, default=REPO / "tests" / "files" / "security_sample.evtx"
    )
    parser.add_argument(
        "--note", default="", help="a line about the machine's load, for the record"
    )
    args = parser.parse_args()
    runs = measure(args.rules, args.file, args.rounds)
    files = sum(1 for path in args.rules.rglob("*.yml"))
    lines = [
        f"- Date: {time.strftime('%Y-%m-%d')}; {cpu_model()},"
        f" {os.cpu_count()} cores (shared VM); Python {platform.python_version()};"
        f" socpipe {metadata.version('socpipe')} (compiled hot path), pySigma"
        f" {metadata.version('pySigma')}",
        f"- Rules: {args.rules} ({files:,} files); file scanned: {args.file.name};"
        f" {args.rounds} rounds",
        "- Command: `.venv/bin/python -m bench.rule_cache`",
        *([f"- {args.note}"] if args.note else []),
        "",
        *rows(runs),
    ]
    print("\n".join(lines))
    write_section("bench.rule_cache", lines, HEADING)


if __name__ == "__main__":
    main()

"""Benchmark of ``socpipe scan``: events/s and peak memory on one core.

    python -m bench.scan            # full run (>= 1M-line corpora), writes docs/benchmarks.md
    python -m bench.scan --quick    # smaller corpora, prints only

Each scenario runs in a fresh process pinned to one CPU (so the number is one core's), is
repeated (three times, once with --quick) in rounds over all scenarios, so its runs fall in
different periods of the machine, and reports its best and its slowest run: this machine is
a shared VM whose speed wanders, and the best run is the one least disturbed by neighbours.
Peak memory is the process's maximum RSS.
Scenarios marked ``--jobs 2`` are not pinned: they measure a scan using both cores, and their
peak memory is that of the largest process (the scan or one of its workers).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from bench.corpus import generate
from bench.paths import REPO, SHARED
from bench.report import write_section

CACHE = REPO / "bench" / ".cache"
SIGMA_ALL = [SHARED / "sigma" / "rules", SHARED / "sigma" / "rules-threat-hunting"]
PROJECT = [REPO / "rules"]


@dataclass(frozen=True)
class Scenario:
    name: str
    inputs: list[Path]
    rules: list[Path]
    repeats: int
    #: ``socpipe scan --jobs``: 1 is pinned to one core, more use every core.
    jobs: int = 1


def corpus(kind: str, lines: int) -> Path:
    """A generated corpus, made once and cached."""
    path = CACHE / f"{kind}-{lines}.log"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        with partial.open("w", encoding="utf-8") as handle:
            for line in generate(kind, lines, attacks=max(lines // 2000, 1)):
                handle.write(line + "\n")
        partial.rename(path)
    return path


def scenarios(quick: bool) -> list[Scenario]:
    big = 100_000 if quick else 1_000_000
    repeats = 1 if quick else 3
    loghub = [
        SHARED / "loghub" / "2k" / name / f"{name}_2k.log"
        for name in ("OpenSSH", "Linux", "Apache")
    ]
    plan = [
        Scenario("loghub 2k OpenSSH+Linux+Apache, project rules", loghub, PROJECT, 3),
        Scenario("loghub 2k OpenSSH+Linux+Apache, all SigmaHQ rules", loghub, SIGMA_ALL, 3),
        Scenario(
            f"Linux auth {big:,} lines, project rules", [corpus("linux", big)], PROJECT, repeats
        ),
        Scenario(
            f"web access {big:,} lines, project rules", [corpus("web", big)], PROJECT, repeats
        ),
        Scenario(
            f"firewall CEF {big // 4:,} lines, project rules",
            [corpus("cef", big // 4)],
            PROJECT,
            repeats,
        ),
        Scenario(
            f"Linux auth {big // 4:,} lines, all SigmaHQ rules",
            [corpus("linux", big // 4)],
            SIGMA_ALL,
            repeats,
        ),
        Scenario(
            f"Windows {big // 4:,} events, all SigmaHQ rules",
            [corpus("windows", big // 4)],
            SIGMA_ALL,
            repeats,
        ),
        Scenario(
            f"Windows {big:,} events, all SigmaHQ rules",
            [corpus("windows", big)],
            SIGMA_ALL,
            repeats,
        ),
        Scenario(
            f"Linux auth {big:,} lines, project rules, `--jobs 2` (both cores)",
            [corpus("linux", big)],
            PROJECT,
            repeats,
            jobs=2,
        ),
        Scenario(
            f"web access {big:,} lines, project rules, `--jobs 2` (both cores)",
            [corpus("web", big)],
            PROJECT,
            repeats,
            jobs=2,
        ),
        Scenario(
            f"Windows {big:,} events, all SigmaHQ rules, `--jobs 2` (both cores)",
            [corpus("windows", big)],
            SIGMA_ALL,
            repeats,
            jobs=2,
        ),
    ]
    if not SHARED.exists():
        print(
            f"reference data not found at {SHARED}: SigmaHQ and loghub scenarios skipped",
            file=sys.stderr,
        )
        plan = [
            scenario
            for scenario in plan
            if all(path.exists() for path in scenario.rules + scenario.inputs)
        ]
    return plan


def run_once(scenario: Scenario) -> dict:
    """One scan in a child process; its own timing plus the peak RSS the kernel recorded."""
    command = [
        sys.executable,
        "-m",
        "bench.scan",
        "--child",
        json.dumps([str(p) for p in scenario.inputs]),
        json.dumps([str(p) for p in scenario.rules]),
        str(scenario.jobs),
    ]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
    output = process.stdout.read() if process.stdout else ""
    _pid, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise RuntimeError(f"scenario {scenario.name!r} failed with status {status}")
    result = json.loads(output)
    # The largest of the scan process and its workers.
    result["peak_rss_mib"] = max(usage.ru_maxrss, result.pop("workers_peak_rss_kib")) / 1024
    return result


def child(inputs: list[str], rules: list[str], jobs: int) -> None:
    """Runs inside the child: load rules, scan as `socpipe scan` does (without writing the
    alerts out), report numbers as JSON on stdout. One job is pinned to one core."""
    if jobs == 1:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    from socpipe.detectors.rules import load_rules
    from socpipe.scanner.run import ScanOptions, run_scan

    started = time.perf_counter()
    report = load_rules([Path(path) for path in rules])
    loaded = time.perf_counter()
    options = ScanOptions(
        paths=[Path(path) for path in inputs], agency_id="bench", progress=False, jobs=jobs
    )
    summary = run_scan(options, rules=report)
    finished = time.perf_counter()
    print(
        json.dumps(
            {
                "rules": len(report.rules),
                "events": summary.read.events,
                "alerts": summary.alerts,
                "load_seconds": loaded - started,
                "scan_seconds": finished - loaded,
                "workers_peak_rss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
            }
        )
    )


def split(kind: str, rules: list[Path], lines: int = 50_000) -> dict:
    """Where the time goes: parsing alone, then detection alone on the parsed events."""
    from socpipe.collectors.files import FileEventReader
    from socpipe.collectors.parsers import ParseContext
    from socpipe.detectors.engine import SigmaEngine
    from socpipe.detectors.rules import load_rules

    path = corpus(kind, lines)
    # Parsing is timed streaming, as a scan runs: holding every event alive while parsing
    # would time the garbage collector walking them too.
    started = time.perf_counter()
    for _event in FileEventReader(ParseContext()).read([path]):
        pass
    parsed = time.perf_counter()
    events = list(FileEventReader(ParseContext()).read([path]))
    engine = SigmaEngine(load_rules(rules).rules)
    engine.match(events[0])
    detect_start = time.perf_counter()
    for event in events:
        engine.match(event)
    detected = time.perf_counter()
    return {
        "parse_us": 1e6 * (parsed - started) / len(events),
        "detect_us": 1e6 * (detected - detect_start) / len(events),
    }


def machine() -> list[str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    versions = ", ".join(
        f"{name} {metadata.version(name)}" for name in ("pySigma", "google-re2", "evtx", "PyYAML")
    )
    from socpipe.pipeline import hot_path_compiled

    compiled = (
        f"hot path compiled by mypyc (mypy {metadata.version('mypy')}, see setup.py)"
        if hot_path_compiled()
        else "hot path interpreted (not compiled)"
    )
    return [
        f"- Machine: {cpu}, {os.cpu_count()} cores (shared VM), {round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30)} GiB RAM; one core per scenario unless it says `--jobs 2`",
        f"- Python {platform.python_version()} ({platform.python_implementation()}), {versions}; {compiled}",
        f"- Date: {time.strftime('%Y-%m-%d')}",
    ]


def _row(name: str, runs: list[dict]) -> str:
    """A table row: the best run's numbers, the slowest run's rate and the highest peak."""
    rates = [run["events"] / run["scan_seconds"] for run in runs]
    best = runs[rates.index(max(rates))]
    peak = max(run["peak_rss_mib"] for run in runs)
    return (
        f"| {name} | {best['rules']:,} | {best['events']:,} | {max(rates):,.0f}"
        f" | {min(rates):,.0f} | {best['load_seconds']:.1f} | {peak:.0f} | {best['alerts']:,} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child[0]), json.loads(args.child[1]), int(args.child[2]))
        return
    plan = scenarios(args.quick)
    runs: dict[str, list[dict]] = {scenario.name: [] for scenario in plan}
    # Rounds over all scenarios rather than a scenario's repeats back to back: this VM has
    # slow periods lasting minutes, which would otherwise take every run of one scenario.
    for round_number in range(max(scenario.repeats for scenario in plan)):
        for scenario in plan:
            if round_number < scenario.repeats:
                run = run_once(scenario)
                runs[scenario.name].append(run)
                rate = run["events"] / run["scan_seconds"]
                print(f"round {round_number + 1}: {scenario.name}: {rate:,.0f}/s", flush=True)
    rows = [
        "| scenario | rules | events | events/s (best) | slowest run | rule load s"
        " | peak RSS MiB | alerts |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for scenario in plan:
        rows.append(_row(scenario.name, runs[scenario.name]))
        print(rows[-1], flush=True)
    split_rows = [
        "| corpus | rules | parse µs/event | detect µs/event |",
        "| --- | --- | ---: | ---: |",
    ]
    for kind, label, rules in (
        ("linux", "project", PROJECT),
        ("web", "project", PROJECT),
        ("cef", "project", PROJECT),
        ("windows", "all SigmaHQ", SIGMA_ALL),
    ):
        if all(path.exists() for path in rules):
            numbers = split(kind, rules)
            split_rows.append(
                f"| {kind} | {label} | {numbers['parse_us']:.1f} | {numbers['detect_us']:.1f} |"
            )
            print(split_rows[-1], flush=True)
    if args.quick:
        return
    document = write_section(
        "bench.scan",
        [
            *machine(),
            "- Command: `make bench-scan` (= `.venv/bin/python -m bench.scan`)",
            "",
            *rows,
            "",
            "Where the time goes (50,000-event slices, one process, not pinned):",
            "",
            *split_rows,
        ],
        "## `socpipe scan` (bench/scan.py)",
    )
    print(f"written to {document}")


if __name__ == "__main__":
    main()

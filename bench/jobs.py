"""``socpipe scan --jobs N`` on EVTX files and on many small files: what more processes give.

    .venv/bin/python -m bench.jobs --evtx DIR [--rounds 3] [--jobs 1 2]

Each run is the installed command in a fresh process, timed from spawn to exit, with the rule
cache warm (a first run fills it), one core per job available. Inputs:

- ``--evtx DIR``: the .evtx files of a folder (EVTX-ATTACK-SAMPLES flattened, as
  bench/zircolite.py prepares them; not part of socpipe), with every SigmaHQ Windows rule;
- the same files ten times (ten folders of links);
- one large EVTX file made of those files' chunks one after the other (the header of the
  first, then every chunk that holds records, repeated to about 128 MiB): how a single big
  file is shared by chunk ranges;
- 2,000 small text files (generated Linux auth, web and firewall logs, 400 lines each) with
  the project's rules: many small files.

Rounds go over all inputs and job counts in turn. The table gives events, the median wall
time with its fastest and slowest, the speed-up of the median over one job, and events/s with
start-up (events over wall time). Results go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.corpus import generate
from bench.paths import REPO, SIGMA_WINDOWS
from bench.report import write_section

HEADING = "## `socpipe scan --jobs` (bench/jobs.py)"
EVTX_HEADER, EVTX_CHUNK = 4096, 65536
_EVENTS = re.compile(r"events\s+([\d,]+)")


@dataclass(frozen=True)
class Run:
    wall: float
    cpu: float
    events: int


def timed(command: list[str], environment: dict[str, str]) -> Run:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, env=environment, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    found = _EVENTS.search(done.stderr)
    events = int(found.group(1).replace(",", "")) if found else 0
    return Run(wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, events)


def big_evtx(files: list[Path], target: Path, size: int) -> Path:
    """One EVTX file of the files' chunks that hold records, repeated to about ``size``."""
    chunks = []
    for path in files:
        data = path.read_bytes()
        for start in range(EVTX_HEADER, len(data) - EVTX_CHUNK + 1, EVTX_CHUNK):
            chunk = data[start : start + EVTX_CHUNK]
            if chunk.startswith(b"ElfChnk\x00") and chunk[8:16] != b"\x00" * 8:
                chunks.append(chunk)
    with target.open("wb") as out:
        out.write(files[0].read_bytes()[:EVTX_HEADER])
        written = EVTX_HEADER
        while written < size:
            for chunk in chunks:
                out.write(chunk)
                written += len(chunk)
    return target


def inputs(evtx: Path, folder: Path) -> dict[str, tuple[list[str], Path]]:
    """Input name -> (paths, rules)."""
    files = sorted(evtx.glob("*.evtx"))
    tenfold = folder / "x10"
    for copy in range(10):
        target = tenfold / f"copy{copy:02d}"
        target.mkdir(parents=True)
        for path in files:
            (target / path.name).symlink_to(path)
    small = folder / "small"
    small.mkdir()
    for kind in ("linux", "web", "cef"):
        lines = list(generate(kind, 266_667, attacks=50))
        for number in range(0, len(lines), 400):
            (small / f"{kind}-{number // 400:04d}.log").write_text(
                "\n".join(lines[number : number + 400]) + "\n", encoding="utf-8"
            )
    big = big_evtx(files, folder / "big.evtx", 128 << 20)
    return {
        f"EVTX-ATTACK-SAMPLES ({len(files)} files), SigmaHQ Windows rules": (
            [str(evtx)],
            SIGMA_WINDOWS,
        ),
        "the same ten times, SigmaHQ Windows rules": ([str(tenfold)], SIGMA_WINDOWS),
        f"one EVTX file of {big.stat().st_size >> 20} MiB, SigmaHQ Windows rules": (
            [str(big)],
            SIGMA_WINDOWS,
        ),
        f"{len(list(small.iterdir())):,} small text files, project rules": (
            [str(small)],
            REPO / "rules",
        ),
    }


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--evtx", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--note", default="", help="a line on the machine's load, for the record")
    args = parser.parse_args()
    socpipe = str(REPO / ".venv" / "bin" / "socpipe")
    results: dict[tuple[str, int], list[Run]] = {}
    with tempfile.TemporaryDirectory() as folder:
        environment = {**os.environ, "SOCPIPE_CACHE_DIR": str(Path(folder) / "cache")}
        cases = inputs(args.evtx, Path(folder))
        commands = {
            name: [socpipe, "scan", *paths, "--rules", str(rules), "--no-progress"]
            for name, (paths, rules) in cases.items()
        }
        for command in commands.values():  # fill the rule cache
            timed([*command, "--jobs", "1"], environment)
        for _ in range(args.rounds):
            for name, command in commands.items():
                for jobs in args.jobs:
                    run = timed([*command, "--jobs", str(jobs)], environment)
                    results.setdefault((name, jobs), []).append(run)
                    print(f"{name} --jobs {jobs}: {run.wall:.2f} s, {run.events:,} events")
    table = [
        "| input | --jobs | events | median wall s | fastest | slowest | speed-up | events/s"
        " with start-up | CPU s (median run) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for (name, jobs), runs in results.items():
        median = statistics.median(run.wall for run in runs)
        one = statistics.median(run.wall for run in results[(name, args.jobs[0])])
        middle = sorted(runs, key=lambda run: run.wall)[len(runs) // 2]
        table.append(
            f"| {name} | {jobs} | {runs[0].events:,} | {median:.2f}"
            f" | {min(r.wall for r in runs):.2f} | {max(r.wall for r in runs):.2f}"
            f" | {one / median:.2f}x | {runs[0].events / median:,.0f} | {middle.cpu:.2f} |"
        )
    lines = [
        f"- Date: {time.strftime('%Y-%m-%d')}; {cpu_model()},"
        f" {os.cpu_count()} cores (shared VM); rule cache warm; {args.rounds} rounds",
        "- Command: `.venv/bin/python -m bench.jobs --evtx DIR` (DIR: EVTX-ATTACK-SAMPLES"
        " flattened, see bench/zircolite.py)",
        *([f"- {args.note}"] if args.note else []),
        "",
        *table,
    ]
    print("\n".join(lines))
    write_section("bench.jobs", lines, HEADING)


if __name__ == "__main__":
    main()

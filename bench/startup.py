"""Start-up of the ``socpipe`` command: wall time and peak memory of short runs, and where they go.

    python -m bench.startup [--runs 7] [--baseline]

Every measurement runs the installed command in a fresh process, as a user does, so that this
benchmark measures whatever the command line imports and loads, however the code is laid out.
Scenarios (each run ``--runs`` times, in rounds, median reported):

- a no-op: ``socpipe --version`` (``socpipe --help`` where there is no ``--version``);
- ``socpipe scan`` of a path that does not exist (a usage error, exit status 2);
- ``socpipe scan`` of one small .evtx file (7 records) with the project's rules;
- the same with the full SigmaHQ Windows rule set.

Every run gets the same, initially empty ``XDG_CACHE_HOME``: a cache kept there (a compiled
rule cache, say) is cold in the first run and warm after it, and the table shows the first run
apart. The breakdown: ``python -X importtime`` of the full-set scan summed by top-level package,
and who imports the heaviest ones; a ``cProfile`` of that scan for the share of rule loading
and compiling; the memory each heavy package takes when imported alone.
"""

from __future__ import annotations

import argparse
import os
import pstats
import re
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from bench.measure import (
    BenchError,
    Quiet,
    Run,
    git_commit,
    load_line,
    machine_line,
    timed_run,
)
from bench.paths import REPO, SIGMA_WINDOWS
from bench.report import write_section

SMALL_FILE = REPO / "tests" / "files" / "security_sample.evtx"
HEADING = "## Start-up of the command line (bench/startup.py)"
#: Functions whose cumulative time the profile reports: (name, a part of their file's path).
#: Found by name so that moving modules does not break the report; absent ones say so.
RULE_FUNCTIONS = (
    ("load_rules", "rules"),
    ("load_all", "yaml"),
    ("from_dict", "sigma"),
    ("apply", "sigma/processing"),
    ("compile_rule", "compiler"),
)
_IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)\s*$")


@dataclass(frozen=True)
class Import:
    """One line of ``python -X importtime``: a module, its own and its cumulative time."""

    module: str
    self_us: int
    cumulative_us: int
    #: Nesting: 0 for a module the program imported itself, 1 for one it imported, ...
    depth: int

    @property
    def package(self) -> str:
        return self.module.split(".", 1)[0]


def parse_importtime(text: str) -> list[Import]:
    """The import lines of ``-X importtime`` output, in the order Python printed them (a module
    after everything it imported); other lines (the program's own output) are skipped."""
    imports = []
    for line in text.splitlines():
        found = _IMPORT_LINE.match(line)
        if found:
            self_us, cumulative, indent, module = found.groups()
            # The header's "imported package" does not match: its times are not digits.
            imports.append(Import(module, int(self_us), int(cumulative), (len(indent) - 1) // 2))
    return imports


def by_package(imports: Sequence[Import]) -> dict[str, int]:
    """Own import time summed per top-level package, in µs, largest first."""
    totals: dict[str, int] = defaultdict(int)
    for entry in imports:
        totals[entry.package] += entry.self_us
    return dict(sorted(totals.items(), key=lambda item: (-item[1], item[0])))


def import_chain(imports: Sequence[Import], module: str) -> list[str]:
    """Who first imported ``module``: its name, then its importer's, up to the program's own
    import. Python prints an importer after the modules it imported, one level shallower."""
    for position, entry in enumerate(imports):
        if entry.module == module:
            chain, depth = [module], entry.depth
            for later in imports[position + 1 :]:
                if later.depth < depth:
                    chain.append(later.module)
                    depth = later.depth
                    if depth == 0:
                        break
            return chain
    return []


def median_packages(runs: Sequence[dict[str, int]]) -> dict[str, float]:
    """The median over runs of each package's import time (0 in a run that did not import it)."""
    names = {name for run in runs for name in run}
    medians = {name: statistics.median(run.get(name, 0) for run in runs) for name in names}
    return dict(sorted(medians.items(), key=lambda item: (-item[1], item[0])))


@dataclass(frozen=True)
class Scenario:
    name: str
    arguments: tuple[str, ...]
    expected_exit: int = 0


@dataclass(frozen=True)
class Summary:
    """The runs of one scenario: the first (cold caches) apart, the median over all."""

    first: float
    median: float
    fastest: float
    slowest: float
    cpu_median: float
    rss_median: float


def summarise(runs: Sequence[Run]) -> Summary:
    if not runs:
        raise ValueError("no runs to summarise")
    walls = [run.wall_seconds for run in runs]
    return Summary(
        first=walls[0],
        median=statistics.median(walls),
        fastest=min(walls),
        slowest=max(walls),
        cpu_median=statistics.median(run.cpu_seconds for run in runs),
        rss_median=statistics.median(run.peak_rss_mib for run in runs),
    )


def timing_rows(summaries: dict[str, Summary]) -> list[str]:
    rows = [
        "| command | median wall s | first run s | fastest | slowest | median CPU s"
        " | median peak RSS MiB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, summary in summaries.items():
        rows.append(
            f"| {name} | **{summary.median:.2f}** | {summary.first:.2f} | {summary.fastest:.2f}"
            f" | {summary.slowest:.2f} | {summary.cpu_median:.2f} | {summary.rss_median:.0f} |"
        )
    return rows


def package_rows(packages: dict[str, float], total_us: float, limit: int = 15) -> list[str]:
    rows = ["| package | import ms (own time, median) | share of all imports |"]
    rows.append("| --- | ---: | ---: |")
    for name, micros in list(packages.items())[:limit]:
        rows.append(f"| {name} | {micros / 1000:.0f} | {micros / total_us:.0%} |")
    return rows


# --- running ----------------------------------------------------------------------------------


def no_op(socpipe: Path, scratch: Path, env: dict[str, str]) -> Scenario:
    """``--version`` where the command has it; ``--help`` otherwise (today's command line)."""
    try:
        timed_run(
            [str(socpipe), "--version"],
            cwd=scratch,
            stdout=scratch / "version.out",
            stderr=scratch / "version.err",
            env=env,
        )
    except BenchError:
        return Scenario("`socpipe --help` (no `--version` yet)", ("--help",))
    return Scenario("`socpipe --version`", ("--version",))


def scenarios(socpipe: Path, rules: Path, scratch: Path, env: dict[str, str]) -> list[Scenario]:
    count = len(list(rules.rglob("*.yml")))
    small = f"one small .evtx ({SMALL_FILE.name}, 7 records)"
    return [
        no_op(socpipe, scratch, env),
        Scenario("`socpipe scan` of a missing path (usage error)", ("scan", "/no/such/path"), 2),
        Scenario(
            f"`socpipe scan` of {small}, project rules",
            ("scan", str(SMALL_FILE), "--no-progress"),
        ),
        Scenario(
            f"`socpipe scan` of {small}, SigmaHQ Windows rules ({count:,} files)",
            # Every rule (no SigmaHQ profile): the full set is what start-up is judged on.
            (
                "scan",
                str(SMALL_FILE),
                "--no-progress",
                "--rules",
                str(rules),
                "--rules-profile",
                "none",
            ),
        ),
    ]


def measure_all(
    socpipe: Path,
    plan: Sequence[Scenario],
    runs: int,
    quiet: Quiet,
    scratch: Path,
    env: dict[str, str],
) -> dict[str, Summary]:
    """Every scenario once per round, so that a slow period of the machine spreads over all."""
    measured: dict[str, list[Run]] = {scenario.name: [] for scenario in plan}
    for round_number in range(1, runs + 1):
        for scenario in plan:
            quiet.wait()
            run = timed_run(
                [str(socpipe), *scenario.arguments],
                cwd=scratch,
                stdout=scratch / "out",
                stderr=scratch / "err",
                env=env,
                expected_exit=scenario.expected_exit,
            )
            measured[scenario.name].append(run)
            print(
                f"round {round_number}: {scenario.name}: {run.wall_seconds:.2f} s,"
                f" {run.peak_rss_mib:.0f} MiB",
                flush=True,
            )
    return {name: summarise(found) for name, found in measured.items()}


def importtime(
    socpipe: Path, arguments: Sequence[str], scratch: Path, env: dict[str, str]
) -> list[Import]:
    """One run under ``-X importtime``; the console script is a Python file, run directly."""
    command = [sys.executable, "-X", "importtime", str(socpipe), *arguments]
    timed_run(command, cwd=scratch, stdout=scratch / "out", stderr=scratch / "imports", env=env)
    return parse_importtime((scratch / "imports").read_text(encoding="utf-8"))


def profile_rules(
    socpipe: Path, arguments: Sequence[str], scratch: Path, env: dict[str, str]
) -> list[str]:
    """A cProfile of one run: the cumulative time of the rule-loading functions, as a share of
    the whole run (the profiler slows Python code down, so shares say more than seconds)."""
    profile = scratch / "scan.prof"
    command = [sys.executable, "-m", "cProfile", "-o", str(profile), str(socpipe), *arguments]
    timed_run(command, cwd=scratch, stdout=scratch / "out", stderr=scratch / "err", env=env)
    stats = pstats.Stats(str(profile))
    # Stats.stats is keyed by (file, line, function); typeshed does not declare it, and
    # get_stats_profile() keys by function name alone, merging functions of the same name.
    entries = stats.stats  # type: ignore[attr-defined]
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = [
        "| function (found by name) | cumulative s under cProfile | share of the run |",
        "| --- | ---: | ---: |",
    ]
    for name, where in RULE_FUNCTIONS:
        cumulative = [
            values[3]
            for (filename, _line, function), values in entries.items()
            if function == name and where in filename.replace(os.sep, "/")
        ]
        if cumulative:
            seconds = max(cumulative)
            rows.append(f"| `{name}` ({where}) | {seconds:.2f} | {seconds / total:.0%} |")
        else:
            rows.append(f"| `{name}` ({where}) | not found | |")
    rows.append(f"| the whole run | {total:.2f} | 100% |")
    return rows


def entry_module(imports: Sequence[Import], package: str) -> str | None:
    """The module through which another package (or the program) first imported ``package``:
    importing it alone costs what that package costs the program."""
    chain = import_chain(imports, package)
    inside = [module for module in chain if module.split(".", 1)[0] == package]
    return inside[-1] if inside else None


def import_memory(modules: Sequence[str], scratch: Path, env: dict[str, str]) -> list[str]:
    """Peak RSS of a Python that imports one module, less that of a bare one."""
    bare = timed_run(
        [sys.executable, "-c", "pass"],
        cwd=scratch,
        stdout=scratch / "out",
        stderr=scratch / "err",
        env=env,
    ).peak_rss_mib
    rows = [
        f"| imported alone | peak RSS MiB above a bare Python ({bare:.0f} MiB) |",
        "| --- | ---: |",
    ]
    for module in modules:
        run = timed_run(
            # import_module: some module names are no identifiers (_sysconfigdata__linux_...).
            [
                sys.executable,
                "-c",
                "import importlib, sys; importlib.import_module(sys.argv[1])",
                module,
            ],
            cwd=scratch,
            stdout=scratch / "out",
            stderr=scratch / "err",
            env=env,
        )
        rows.append(f"| `{module}` | +{run.peak_rss_mib - bare:.0f} |")
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=7, help="runs of each command (median)")
    parser.add_argument("--rules", default=str(SIGMA_WINDOWS), help="SigmaHQ Windows rules")
    parser.add_argument("--socpipe", help="socpipe executable (default: this venv's)")
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="write the section kept as the baseline before issue 21's work",
    )
    parser.add_argument("--no-write", action="store_true", help="print, do not write the docs")
    Quiet.add_options(parser)
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    try:
        return run(args)
    except BenchError as error:
        print(f"bench.startup: {error}", file=sys.stderr)
        return 1


def run(args: argparse.Namespace) -> int:
    socpipe = Path(args.socpipe) if args.socpipe else Path(sys.executable).parent / "socpipe"
    rules = Path(args.rules)
    problems = []
    if not os.access(socpipe, os.X_OK):
        problems.append(f"--socpipe {socpipe}: not an executable (install socpipe in this venv)")
    if not rules.is_dir():
        problems.append(f"--rules {rules}: not a folder of SigmaHQ Windows rules")
    if not SMALL_FILE.is_file():
        problems.append(f"{SMALL_FILE}: the small .evtx fixture is missing")
    if problems:
        raise BenchError("cannot run the benchmark:\n  " + "\n  ".join(problems))
    with tempfile.TemporaryDirectory(prefix="socpipe-startup-") as folder:
        scratch = Path(folder)
        (scratch / "cache").mkdir()
        env = {**os.environ, "XDG_CACHE_HOME": str(scratch / "cache")}
        plan = scenarios(socpipe, rules, scratch, env)
        load_before = os.getloadavg()
        quiet = Quiet.from_options(args)
        summaries = measure_all(socpipe, plan, args.runs, quiet, scratch, env)
        full = plan[-1]
        import_runs = []
        for _ in range(3):
            quiet.wait()
            import_runs.append(importtime(socpipe, full.arguments, scratch, env))
        packages = median_packages([by_package(imports) for imports in import_runs])
        profile = profile_rules(socpipe, full.arguments, scratch, env)
        memory = import_memory(memory_modules(import_runs[-1], packages), scratch, env)
        load_after = os.getloadavg()
    lines = describe(args, plan, summaries, import_runs[-1], packages, profile, memory)
    lines[1:1] = [load_line(load_before, load_after), quiet.line()]
    print("\n".join(lines))
    if not args.no_write:
        name = "bench.startup-baseline" if args.baseline else "bench.startup"
        print(f"written to {write_section(name, lines, HEADING)}")
    return 0


def memory_modules(imports: Sequence[Import], packages: Mapping[str, float]) -> list[str]:
    """What to import alone for the memory table: the program's own imports that take 20 ms or
    more, then the entry modules of the five slowest packages; never the standard library's."""
    own = [e.module for e in imports if e.depth == 0 and e.cumulative_us >= 20_000]
    slow = [name for name in packages if name not in sys.stdlib_module_names][:5]
    entries = [entry_module(imports, name) for name in slow]
    modules = [*own, *(entry for entry in entries if entry)]
    return [m for m in dict.fromkeys(modules) if m.split(".")[0] not in sys.stdlib_module_names]


def describe(
    args: argparse.Namespace,
    plan: Sequence[Scenario],
    summaries: dict[str, Summary],
    imports: Sequence[Import],
    packages: dict[str, float],
    profile: list[str],
    memory: list[str],
) -> list[str]:
    total = sum(packages.values())
    top_level = sorted(
        (entry for entry in imports if entry.depth == 0),
        key=lambda entry: -entry.cumulative_us,
    )[:8]
    chains = [
        " ← ".join(import_chain(imports, name))
        for name in list(packages)[:6]
        if import_chain(imports, name)
    ]
    difference = summaries[plan[-1].name].median - summaries[plan[-2].name].median
    return [
        machine_line(),
        f"- socpipe {metadata.version('socpipe')} (commit {git_commit(REPO)}),"
        f" pySigma {metadata.version('pySigma')}, scikit-learn {_version('scikit-learn')}",
        f"- Date: {time.strftime('%Y-%m-%d')}; {args.runs} runs of each command, in rounds;"
        " not pinned to a core",
        f"- Command: `.venv/bin/python -m bench.startup --runs {args.runs}"
        + (" --baseline`" if args.baseline else "`"),
        "",
        *timing_rows(summaries),
        "",
        f"Loading and compiling the SigmaHQ Windows rules, the difference of the two scans'"
        f" medians: {difference:.2f} s.",
        "",
        f"Imports of the SigmaHQ scan (`python -X importtime`, median of 3 runs): {total / 1e6:.2f}"
        " s in all, by top-level package:",
        "",
        *package_rows(packages, total),
        "",
        "What the program imports itself (cumulative ms, one run):",
        "",
        "| module | cumulative ms |",
        "| --- | ---: |",
        *(f"| {entry.module} | {entry.cumulative_us / 1000:.0f} |" for entry in top_level),
        "",
        "Who imports the heaviest packages first:",
        "",
        *(f"- {chain}" for chain in chains),
        "",
        "Rule loading in a profile of the SigmaHQ scan (`python -m cProfile`):",
        "",
        *profile,
        "",
        "Memory of the heaviest imports:",
        "",
        *memory,
    ]


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


if __name__ == "__main__":
    sys.exit(main())

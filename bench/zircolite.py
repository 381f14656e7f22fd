"""socpipe side by side with Zircolite on EVTX-ATTACK-SAMPLES: wall time with start-up, detections.

    python -m bench.zircolite --zircolite ZIRCOLITE_CHECKOUT --samples EVTX_ATTACK_SAMPLES \\
        [--python ZIRCOLITE_VENV/bin/python] [--rounds 3] [--files N] [--work DIR] [--baseline]

Both tools are run as users run them: a fresh process per scan, timed from spawn to exit
(start-up, rule loading and writing the results included), on the original set of .evtx files
and on the same files copied ten times. Each scenario runs once per round, in rounds over all
scenarios (this shared VM has slow periods lasting minutes); the tables give the best and the
slowest run. ``--files N`` takes the first N files only, for trying the script out: such runs
are printed, never written to docs/benchmarks.md.

Zircolite gets the SigmaHQ Windows rules socpipe uses, converted by Zircolite itself
(``zircolite.py --ruleset DIR --pipeline ... --save-ruleset``) the two ways Zircolite's own
rule repository builds its Windows rulesets: with pySigma's Sysmon pipeline and with its Windows
audit pipeline, each followed by the Windows log-source pipeline. Given both, Zircolite drops
queries that are the same in both, which is how its default "merged" EVTX ruleset is made. The
conversion runs once and is kept in the work folder until the rule files or Zircolite change.

Nothing fetched is written inside this repository: the work folder (default: beside the
samples) holds the converted rules, the copied sets and the tools' outputs.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from bench.measure import (
    BenchError,
    Quiet,
    Run,
    git_commit,
    load_line,
    machine_line,
    pinned,
    shell_quote,
    spare_cpu,
    timed_run,
)
from bench.paths import REPO, SIGMA_WINDOWS
from bench.report import write_section

COPIES = 10
#: Zircolite's ruleset variants: file name -> pySigma pipelines, in the order they apply.
ZIRCOLITE_RULESETS = {
    "rules_windows_sysmon.json": ("sysmon", "windows-logsources"),
    "rules_windows_generic.json": ("windows-audit", "windows-logsources"),
}
SECTION = "bench.zircolite"
HEADING = "## socpipe and Zircolite on EVTX-ATTACK-SAMPLES (bench/zircolite.py)"


# --- what is compared -------------------------------------------------------------------------


@dataclass(frozen=True)
class Detections:
    """What one tool found, reduced to what both tools' outputs can say.

    A detection is keyed by (rule title, file name, event record id): both tools name the rule by
    its Sigma title and keep the .evtx file and the record of the event it matched, so the keys
    join across tools. File names are unique in the sets this benchmark builds.
    """

    alerts: int
    #: (rule title, file name, EventRecordID) of every matched event.
    pairs: frozenset[tuple[str, str, str]]
    rules: frozenset[str]
    #: Matches whose file or record could not be read (left out of ``pairs``).
    unjoinable: int = 0

    @property
    def events(self) -> frozenset[tuple[str, str]]:
        """Distinct events matched by at least one rule."""
        return frozenset((file, record) for _title, file, record in self.pairs)

    def per_rule(self) -> Counter[str]:
        return Counter(title for title, _file, _record in self.pairs)


def socpipe_detections(lines: Iterable[str]) -> Detections:
    """Read ``socpipe scan --out`` (one alert per JSON line, its matched events inside)."""
    alerts, unjoinable = 0, 0
    pairs: set[tuple[str, str, str]] = set()
    rules: set[str] = set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            alert = json.loads(line)
            title = str(alert["rule.name"])
        except (ValueError, KeyError, TypeError) as error:
            raise BenchError(f"socpipe alert line {number}: not an alert ({error})") from None
        alerts += 1
        rules.add(title)
        events = alert.get("events") or []
        for event in events:
            path, record = event.get("log.file.path"), event.get("winlog.record_id")
            if path is None or record is None:
                unjoinable += 1
            else:
                pairs.add((title, Path(str(path)).name, str(record)))
        if not events:
            unjoinable += 1
    return Detections(alerts, frozenset(pairs), frozenset(rules), unjoinable)


def zircolite_detections(results: object) -> Detections:
    """Read Zircolite's JSON output: a list of fired rules, each with its matched rows."""
    if not isinstance(results, list):
        raise BenchError("Zircolite output: expected a JSON list of fired rules")
    alerts, unjoinable = 0, 0
    pairs: set[tuple[str, str, str]] = set()
    rules: set[str] = set()
    for position, rule in enumerate(results):
        if not isinstance(rule, dict) or not isinstance(rule.get("matches"), list):
            raise BenchError(f"Zircolite output: entry {position} is not a rule with matches")
        title = str(rule.get("title", ""))
        rules.add(title)
        for match in rule["matches"]:
            alerts += 1
            file, record = match.get("OriginalLogfile"), match.get("EventRecordID")
            if file is None or record is None:
                unjoinable += 1
            else:
                pairs.add((title, Path(str(file)).name, str(record)))
    return Detections(alerts, frozenset(pairs), frozenset(rules), unjoinable)


def _count(pattern: str, text: str) -> int | None:
    """The number a pattern captures (thousands separators allowed), None when absent."""
    found = re.search(pattern, text, re.MULTILINE)
    return int(found.group(1).replace(",", "")) if found else None


def socpipe_counts(summary: str) -> tuple[int | None, int | None]:
    """(events read, rules loaded) from the summary ``socpipe scan`` prints on stderr."""
    return (
        _count(r"^\s*events\s+([\d,]+)", summary),
        _count(r"^\s*rules\s+([\d,]+) loaded", summary),
    )


def zircolite_counts(log: str) -> tuple[int | None, int | None]:
    """(events read, rules loaded) from Zircolite's log file (which keeps Rich markup)."""
    markup = r"(?:\[[a-z/]+\])?"
    return (
        _count(rf"Total events processed: {markup}([\d,]+)", log),
        _count(rf"\[\+\] {markup}([\d,]+){markup} rules loaded", log),
    )


# --- the scenarios ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Tools:
    """The checked paths of everything the benchmark runs."""

    socpipe: Path
    sigma_rules: Path
    zircolite: Path
    zircolite_python: Path
    samples: Path
    work: Path


@dataclass(frozen=True)
class Scenario:
    key: str
    dataset: str  # "original" or "x10"
    tool: str  # "socpipe" or "Zircolite"
    mode: str
    command: tuple[str, ...]
    output: Path
    log: Path
    #: The ratio rows pair each Zircolite scenario with the socpipe scenario named here.
    versus: str | None = None


@dataclass
class Result:
    scenario: Scenario
    runs: list[Run] = field(default_factory=list)
    events: int | None = None
    rules: int | None = None
    files: int = 0
    detections: Detections | None = None
    #: Runs whose detections differed from the first run's (should stay empty).
    inconsistent: int = 0

    @property
    def best(self) -> Run:
        return min(self.runs, key=lambda run: run.wall_seconds)

    @property
    def slowest(self) -> Run:
        return max(self.runs, key=lambda run: run.wall_seconds)


def socpipe_scenario(
    tools: Tools, dataset: str, folder: Path, mode: str, jobs: int, key: str
) -> Scenario:
    """``socpipe scan`` of a folder, pinned to one CPU unless it has several jobs."""
    runs = tools.work / "runs"
    out = runs / f"{key}.jsonl"
    command = [str(tools.socpipe), "scan", str(folder), "--rules", str(tools.sigma_rules)]
    # Every rule, as Zircolite gets them: socpipe's SigmaHQ profile (its noise budget, on by
    # default) would leave out the rules it holds too noisy for a SOC's queue.
    command += ["--rules-profile", "none", "--out", str(out), "--no-progress"]
    command += ["--jobs", str(jobs)] if jobs > 1 else []
    cpu = None if jobs > 1 else spare_cpu()
    return Scenario(
        key, dataset, "socpipe", mode, tuple(pinned(command, cpu)), out, runs / f"{key}.stderr"
    )


def zircolite_scenario(
    tools: Tools,
    dataset: str,
    folder: Path,
    mode: str,
    rulesets: Sequence[Path],
    one_core: bool,
    key: str,
    versus: str,
) -> Scenario:
    """Zircolite on a folder with its defaults (it picks its threads), maybe on one CPU."""
    runs = tools.work / "runs"
    out, log = runs / f"{key}.json", runs / f"{key}.log"
    command = [str(tools.zircolite_python), str(tools.zircolite / "zircolite.py")]
    command += ["--events", str(folder)]
    for ruleset in rulesets:
        command += ["--ruleset", str(ruleset)]
    command += ["--config", str(tools.zircolite / "config" / "config.yaml")]
    command += ["--outfile", str(out), "--logfile", str(log), "--quiet"]
    cpu = spare_cpu() if one_core else None
    return Scenario(key, dataset, "Zircolite", mode, tuple(pinned(command, cpu)), out, log, versus)


def scenarios(tools: Tools, sets: dict[str, Path], rulesets: Sequence[Path]) -> list[Scenario]:
    """socpipe on one core and with ``--jobs 2``; Zircolite on one core and on both (its default
    threads), with the merged rulesets and, on one core, with the Sysmon one alone."""
    plan: list[Scenario] = []
    for dataset, folder in sets.items():
        slug = "x1" if dataset == "original" else "x10"
        one_core, both = f"socpipe-{slug}-1core", f"socpipe-{slug}-jobs2"
        merged = "merged rulesets (Sysmon + Windows audit conversions)"
        plan += [
            socpipe_scenario(tools, dataset, folder, "one core", 1, one_core),
            zircolite_scenario(
                tools,
                dataset,
                folder,
                f"one core, {merged}",
                rulesets,
                True,
                f"zircolite-{slug}-1core",
                one_core,
            ),
            zircolite_scenario(
                tools,
                dataset,
                folder,
                "one core, Sysmon ruleset only",
                rulesets[:1],
                True,
                f"zircolite-{slug}-1core-sysmon",
                one_core,
            ),
            socpipe_scenario(tools, dataset, folder, "`--jobs 2`, both cores", 2, both),
            zircolite_scenario(
                tools,
                dataset,
                folder,
                f"both cores (its default threads), {merged}",
                rulesets,
                False,
                f"zircolite-{slug}-2cores",
                both,
            ),
        ]
    return plan


def measure(scenario: Scenario, result: Result) -> Run:
    """One run of a scenario; its detections read and compared with the first run's."""
    stdout = scenario.log.with_suffix(".stdout")
    stderr = scenario.log if scenario.tool == "socpipe" else scenario.log.with_suffix(".stderr")
    # Zircolite appends to its log file: each run starts with none, as with no output.
    scenario.output.unlink(missing_ok=True)
    scenario.log.unlink(missing_ok=True)
    run = timed_run(scenario.command, cwd=scenario.log.parent, stdout=stdout, stderr=stderr)
    log_text = scenario.log.read_text(encoding="utf-8", errors="replace")
    if scenario.tool == "socpipe":
        with scenario.output.open(encoding="utf-8") as alerts:
            detections = socpipe_detections(alerts)
        result.events, result.rules = socpipe_counts(log_text)
    else:
        with scenario.output.open("rb") as output:
            detections = zircolite_detections(json.load(output))
        result.events, result.rules = zircolite_counts(log_text)
    if result.detections is None:
        result.detections = detections
    elif detections != result.detections:
        result.inconsistent += 1
    result.runs.append(run)
    return run


# --- preparing the inputs ---------------------------------------------------------------------


def check_paths(args: argparse.Namespace) -> Tools:
    """Every path the benchmark needs, or one error listing all that are missing."""
    zircolite = Path(args.zircolite).resolve()
    samples = Path(args.samples).resolve()
    python = Path(args.python) if args.python else zircolite / ".venv" / "bin" / "python"
    socpipe = Path(args.socpipe) if args.socpipe else Path(sys.executable).parent / "socpipe"
    rules = Path(args.rules)
    problems = []
    if not (zircolite / "zircolite.py").is_file():
        problems.append(f"--zircolite {zircolite}: no zircolite.py there (a Zircolite checkout)")
    elif not (zircolite / "config" / "config.yaml").is_file():
        problems.append(f"--zircolite {zircolite}: no config/config.yaml (its field mappings)")
    if not os.access(python, os.X_OK):
        hint = "" if args.python else " (default: the checkout's .venv; give --python)"
        problems.append(f"--python {python}: not an executable{hint}")
    if not samples.is_dir():
        problems.append(f"--samples {samples}: not a folder")
    elif not evtx_files(samples):
        problems.append(f"--samples {samples}: no .evtx file below it")
    if not os.access(socpipe, os.X_OK):
        problems.append(f"--socpipe {socpipe}: not an executable (install socpipe in this venv)")
    if not rules.is_dir():
        problems.append(f"--rules {rules}: not a folder of SigmaHQ Windows rules")
    if shutil.which("taskset") is None:
        problems.append("taskset not found (util-linux): it pins the one-core runs")
    if problems:
        raise BenchError("cannot run the benchmark:\n  " + "\n  ".join(problems))
    work = Path(args.work).resolve() if args.work else samples.parent / "socpipe-zircolite-bench"
    return Tools(socpipe, rules.resolve(), zircolite, python, samples, work)


def evtx_files(samples: Path) -> list[Path]:
    """The .evtx files below a folder (not in hidden folders such as .git), in a stable order."""
    return sorted(
        path
        for path in samples.rglob("*.evtx")
        if path.is_file() and not any(part.startswith(".") for part in path.parts)
    )


def flat_name(relative: Path) -> str:
    """One file name for a path below the samples: folder names kept, joined by ``__``.

    Zircolite reports only a file's name, and the samples repeat a name in two folders.
    """
    return "__".join(relative.parts)


def build_set(samples: Path, files: Sequence[Path], target: Path, copies: int) -> Path:
    """Copy the files into one flat folder per copy (``copyNN/cNN__name`` when copied more
    than once, so that every name is unique); reused when already complete."""
    marker = target / ".complete"
    expected = f"{len(files)} files x {copies}\n"
    if marker.exists() and marker.read_text(encoding="utf-8") == expected:
        return target
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.rmtree(target, ignore_errors=True)
    for copy in range(1, copies + 1):
        folder = partial / f"copy{copy:02d}" if copies > 1 else partial
        folder.mkdir(parents=True, exist_ok=True)
        prefix = f"c{copy:02d}__" if copies > 1 else ""
        for file in files:
            shutil.copyfile(file, folder / (prefix + flat_name(file.relative_to(samples))))
    (partial / ".complete").write_text(expected, encoding="utf-8")
    partial.rename(target)
    return target


def _fingerprint(tools: Tools) -> str:
    """What the converted rulesets depend on: the rule files' contents and Zircolite's code."""
    digest = hashlib.sha256()
    for path in sorted(tools.sigma_rules.rglob("*.y*ml")):
        digest.update(str(path.relative_to(tools.sigma_rules)).encode())
        digest.update(path.read_bytes())
    digest.update(git_commit(tools.zircolite).encode())
    digest.update(
        version_of(tools.zircolite_python, ["pySigma", "pySigma-backend-sqlite"]).encode()
    )
    return digest.hexdigest()


def conversion_command(tools: Tools, pipelines: Sequence[str], events: Path) -> list[str]:
    """Zircolite's documented conversion: ``--ruleset`` a folder of Sigma YAML rules with
    ``--pipeline``s and ``--save-ruleset``; it needs events to scan, so it gets one small file."""
    return [
        str(tools.zircolite_python),
        str(tools.zircolite / "zircolite.py"),
        "--events",
        str(events),
        "--ruleset",
        str(tools.sigma_rules),
        "--pipeline",
        *pipelines,
        "--save-ruleset",
        "--config",
        str(tools.zircolite / "config" / "config.yaml"),
        "--outfile",
        "detections.json",
        "--logfile",
        "conversion.log",
    ]


def convert_rules(tools: Tools, small_file: Path) -> list[Path]:
    """The Zircolite rulesets of the SigmaHQ Windows rules, converted now or kept from before."""
    folder = tools.work / "rules"
    fingerprint = _fingerprint(tools)
    stamp = folder / "fingerprint"
    outputs = [folder / name for name in ZIRCOLITE_RULESETS]
    if stamp.exists() and stamp.read_text() == fingerprint and all(p.exists() for p in outputs):
        return outputs
    for output, pipelines in zip(outputs, ZIRCOLITE_RULESETS.values(), strict=True):
        scratch = folder / f"{output.stem}.scratch"
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
        command = conversion_command(tools, pipelines, small_file)
        print(f"converting the rules for Zircolite: {shell_quote(command)}", flush=True)
        timed_run(command, cwd=scratch, stdout=scratch / "stdout", stderr=scratch / "stderr")
        saved = list(scratch.glob("ruleset-*.json"))
        if len(saved) != 1:
            raise BenchError(f"Zircolite saved {len(saved)} rulesets in {scratch}, expected one")
        saved[0].replace(output)
        shutil.copyfile(scratch / "conversion.log", output.with_suffix(".log"))
        shutil.rmtree(scratch)
    stamp.write_text(fingerprint)
    return outputs


def version_of(python: Path, distributions: Sequence[str]) -> str:
    """Installed versions of distributions in another interpreter's environment."""
    script = (
        "import importlib.metadata as m, sys\n"
        "for name in sys.argv[1:]:\n"
        "    try: print(name, m.version(name))\n"
        "    except m.PackageNotFoundError: print(name, 'absent')\n"
    )
    found = subprocess.run(
        [str(python), "-c", script, *distributions], capture_output=True, text=True, check=True
    )
    return ", ".join(found.stdout.split("\n")[:-1])


def zircolite_version(tools: Tools) -> str:
    # In the work folder: Zircolite writes its zircolite.log wherever it runs.
    shown = subprocess.run(
        [str(tools.zircolite_python), str(tools.zircolite / "zircolite.py"), "--version"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tools.work,
    ).stdout
    found = re.search(r"v(\d+\.\d+\.\d+)", shown)
    return found.group(1) if found else "unknown version"


def socpipe_compiled() -> bool:
    """Whether the per-event modules are mypyc extensions (under either layout of the code)."""
    for name in ("socpipe.detectors.engine", "detectors.engine"):
        try:
            spec = importlib.util.find_spec(name)
        except ModuleNotFoundError:
            continue
        if spec is not None:
            return str(spec.origin).endswith(".so")
    return False


# --- the Markdown -----------------------------------------------------------------------------


def speed_ratio(socpipe_seconds: float, zircolite_seconds: float) -> float:
    """How many times Zircolite's time socpipe's is: above 1, socpipe is faster."""
    if socpipe_seconds <= 0 or zircolite_seconds <= 0:
        raise ValueError("times must be positive")
    return zircolite_seconds / socpipe_seconds


def _number(value: int | None) -> str:
    return f"{value:,}" if value is not None else "n/a"


def timing_table(results: Sequence[Result]) -> list[str]:
    rows = [
        "| set | tool, mode | files | events | rules | wall s (best) | slowest | events/s"
        " (best, start-up included) | CPU s (best run) | peak RSS MiB |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        best, scenario = result.best, result.scenario
        rate = f"{result.events / best.wall_seconds:,.0f}" if result.events else "n/a"
        rows.append(
            f"| {scenario.dataset} | {scenario.tool}, {scenario.mode} | {result.files:,}"
            f" | {_number(result.events)} | {_number(result.rules)} | {best.wall_seconds:.2f}"
            f" | {result.slowest.wall_seconds:.2f} | {rate} | {best.cpu_seconds:.2f}"
            f" | {max(run.peak_rss_mib for run in result.runs):.0f} |"
        )
    return rows


def ratio_table(results: Sequence[Result]) -> list[str]:
    """One row per Zircolite scenario against the socpipe scenario it is paired with."""
    by_key = {result.scenario.key: result for result in results}
    rows = [
        "| set | socpipe | Zircolite | socpipe best s | Zircolite best s"
        " | socpipe speed / Zircolite speed (best runs) | (slowest runs) |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        versus = result.scenario.versus
        if versus is None or versus not in by_key:
            continue
        ours = by_key[versus]
        best = speed_ratio(ours.best.wall_seconds, result.best.wall_seconds)
        slowest = speed_ratio(ours.slowest.wall_seconds, result.slowest.wall_seconds)
        rows.append(
            f"| {result.scenario.dataset} | {ours.scenario.mode} | {result.scenario.mode}"
            f" | {ours.best.wall_seconds:.2f} | {result.best.wall_seconds:.2f}"
            f" | **{best:.2f}x** | {slowest:.2f}x |"
        )
    return rows


def detections_table(results: Sequence[Result]) -> list[str]:
    rows = [
        "| set | tool, mode | alerts | distinct (rule, event) | rules fired | events matched"
        " | not joinable | same in every run |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for result in results:
        found = result.detections
        if found is None:
            continue
        rows.append(
            f"| {result.scenario.dataset} | {result.scenario.tool}, {result.scenario.mode}"
            f" | {found.alerts:,} | {len(found.pairs):,} | {len(found.rules):,}"
            f" | {len(found.events):,} | {found.unjoinable:,}"
            f" | {'yes' if result.inconsistent == 0 else f'no ({result.inconsistent} differed)'} |"
        )
    return rows


def overlap_rows(dataset: str, label: str, ours: Detections, theirs: Detections) -> list[str]:
    """Rows of the overlap table: what both found, what only one did."""

    def row(what: str, mine: frozenset, other: frozenset) -> str:
        return (
            f"| {dataset} | {label} | {what} | {len(mine & other):,} | {len(mine - other):,}"
            f" | {len(other - mine):,} |"
        )

    return [
        row("(rule, event) pairs", ours.pairs, theirs.pairs),
        row("rules fired", ours.rules, theirs.rules),
        row("events matched", ours.events, theirs.events),
    ]


OVERLAP_HEADER = [
    "| set | Zircolite rulesets | what | both | socpipe only | Zircolite only |",
    "| --- | --- | --- | ---: | ---: | ---: |",
]


def rule_differences(ours: Detections, theirs: Detections, limit: int = 12) -> list[str]:
    """The rules whose matched events differ most between the tools."""
    mine, other = ours.per_rule(), theirs.per_rule()
    titles = sorted(
        set(mine) | set(other), key=lambda title: (-abs(mine[title] - other[title]), title)
    )
    rows = [
        "| rule | socpipe events | Zircolite events |",
        "| --- | ---: | ---: |",
    ]
    for title in titles[:limit]:
        if mine[title] == other[title]:
            break
        rows.append(f"| {title.replace('|', '/')} | {mine[title]:,} | {other[title]:,} |")
    return rows


# --- running ----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--zircolite", required=True, help="Zircolite checkout")
    parser.add_argument("--samples", required=True, help="EVTX-ATTACK-SAMPLES checkout")
    parser.add_argument("--python", help="Python with Zircolite's requirements")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each scenario")
    parser.add_argument("--files", type=int, help="only the first N .evtx files (a trial run)")
    parser.add_argument("--work", help="folder for sets, converted rules and outputs")
    parser.add_argument("--rules", default=str(SIGMA_WINDOWS), help="SigmaHQ Windows rules")
    parser.add_argument("--socpipe", help="socpipe executable (default: this venv's)")
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="write the section kept as the baseline before issue 21's work",
    )
    Quiet.add_options(parser)
    args = parser.parse_args(argv)
    if args.rounds < 1 or (args.files is not None and args.files < 1):
        parser.error("--rounds and --files must be at least 1")
    try:
        return run(args)
    except BenchError as error:
        print(f"bench.zircolite: {error}", file=sys.stderr)
        return 1


def run(args: argparse.Namespace) -> int:
    tools = check_paths(args)
    files = evtx_files(tools.samples)[: args.files]
    trial = args.files is not None
    sets_folder = tools.work / ("sets" if not trial else f"sets-first-{len(files)}")
    sets = {
        "original": build_set(tools.samples, files, sets_folder / "x1", 1),
        "x10": build_set(tools.samples, files, sets_folder / f"x{COPIES}", COPIES),
    }
    (tools.work / "runs").mkdir(parents=True, exist_ok=True)
    small_file = min(files, key=lambda path: path.stat().st_size)
    rulesets = convert_rules(tools, small_file)
    plan = scenarios(tools, sets, rulesets)
    results = {scenario.key: Result(scenario) for scenario in plan}
    for result in results.values():
        copies = 1 if result.scenario.dataset == "original" else COPIES
        result.files = len(files) * copies
    quiet = Quiet.from_options(args)
    load_before = os.getloadavg()
    for round_number in range(1, args.rounds + 1):
        for scenario in plan:
            quiet.wait()
            run_ = measure(scenario, results[scenario.key])
            print(
                f"round {round_number}: {scenario.dataset}, {scenario.tool}, {scenario.mode}:"
                f" {run_.wall_seconds:.2f} s wall, {run_.cpu_seconds:.2f} s CPU,"
                f" {run_.peak_rss_mib:.0f} MiB",
                flush=True,
            )
    load_after = os.getloadavg()
    ordered = list(results.values())
    lines = describe(tools, args, small_file, ordered, load_before, load_after)
    lines.insert(2, quiet.line())
    print("\n".join(lines))
    if trial:
        print("(a trial on the first files: not written to docs/benchmarks.md)")
    else:
        section = f"{SECTION}-baseline" if args.baseline else SECTION
        print(f"written to {write_section(section, lines, HEADING)}")
    return 0


def describe(
    tools: Tools,
    args: argparse.Namespace,
    small_file: Path,
    results: Sequence[Result],
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
) -> list[str]:
    """The Markdown section: the machine, the versions, the commands and the tables."""
    socpipe_version = metadata.version("socpipe")
    compiled = "hot path compiled by mypyc" if socpipe_compiled() else "hot path interpreted"
    zircolite_deps = version_of(
        tools.zircolite_python, ["pySigma", "pySigma-backend-sqlite", "evtx", "orjson"]
    )
    lines = [
        machine_line(),
        load_line(load_before, load_after),
        f"- socpipe {socpipe_version} (commit {git_commit(REPO)}, {compiled}),"
        f" pySigma {metadata.version('pySigma')}, evtx {metadata.version('evtx')}",
        f"- Zircolite {zircolite_version(tools)} (commit {git_commit(tools.zircolite)}),"
        f" Python {_python_version(tools)};"
        f" {zircolite_deps}",
        f"- EVTX-ATTACK-SAMPLES commit {git_commit(tools.samples)}; rules: {tools.sigma_rules}"
        f" ({len(list(tools.sigma_rules.rglob('*.yml'))):,} files)",
        f"- Date: {time.strftime('%Y-%m-%d')}; {args.rounds} rounds over all scenarios",
        "- Command: `.venv/bin/python -m bench.zircolite"
        f" --zircolite {tools.zircolite} --samples {tools.samples}"
        f" --python {tools.zircolite_python} --rounds {args.rounds}"
        + (" --baseline`" if args.baseline else "`"),
        "",
        "Rules converted for Zircolite (once, not timed; Zircolite converts only when it has"
        " events to scan, so it gets the smallest sample file):",
        "",
        "```sh",
        *(
            f"cd {tools.work / 'rules'} && "
            + shell_quote(conversion_command(tools, pipelines, small_file))
            + f"  # saves ruleset-*.json, kept as {name}"
            for name, pipelines in ZIRCOLITE_RULESETS.items()
        ),
        "```",
        "",
        "Each scenario's command (one core: `taskset` on one CPU):",
        "",
        "```sh",
        *(shell_quote(result.scenario.command) for result in results),
        "```",
        "",
        "Wall time from spawn to exit (start-up, rule loading and writing the results included):",
        "",
        *timing_table(results),
        "",
        "Speed ratio (Zircolite's time over socpipe's):",
        "",
        *ratio_table(results),
        "",
        "Detections (the first run's output; every later run's compared with it):",
        "",
        *detections_table(results),
        "",
        "Overlap, joined on (rule title, .evtx file, EventRecordID):",
        "",
        *OVERLAP_HEADER,
    ]
    by_key = {result.scenario.key: result for result in results}
    differences: list[str] = []
    for slug, dataset in (("x1", "original"), ("x10", "x10")):
        ours = by_key[f"socpipe-{slug}-1core"].detections
        for suffix, label in (("1core", "merged"), ("1core-sysmon", "Sysmon only")):
            theirs = by_key[f"zircolite-{slug}-{suffix}"].detections
            if ours is not None and theirs is not None:
                lines += overlap_rows(dataset, label, ours, theirs)
                if slug == "x1" and suffix == "1core":
                    differences = rule_differences(ours, theirs)
    lines += [
        "",
        "Rules whose matched events differ most (original set, Zircolite merged rulesets):",
        "",
        *differences,
    ]
    return lines


def _python_version(tools: Tools) -> str:
    return subprocess.run(
        [str(tools.zircolite_python), "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


if __name__ == "__main__":
    sys.exit(main())

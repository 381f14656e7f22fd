"""`socpipe scan --jobs`: workers parse and match, this process correlates; the result must
be exactly that of a one-process scan."""

from __future__ import annotations

import faulthandler
import io
import os
import signal
from pathlib import Path

import pytest

from bench.corpus import generate
from socpipe.collectors.files import FileEventReader, FilePart, ReadStats, split_into_parts
from socpipe.collectors.parsers import ParseContext
from socpipe.collectors.parsers.evtx_records import EVTX_HEADER_BYTES
from socpipe.detectors.indicators import IndicatorStore
from socpipe.detectors.rule_cache import RuleCache
from socpipe.detectors.rules import RuleLoadReport
from socpipe.pipeline import main
from socpipe.scanner.parallel import PartResult, scan_parts
from socpipe.scanner.run import ScanOptions, run_scan
from socpipe.scanner.summary import ScanSummary
from tests.conftest import FILES, REPO, shared_data


def scan(
    paths: list[Path],
    out: Path,
    jobs: int,
    part_bytes: int = 4 << 20,
    warm_up_secs: float = 0.0,
    rules: RuleLoadReport | None = None,
) -> ScanSummary:
    """A scan; with workers, none of it is done in this process unless ``warm_up_secs``."""
    options = ScanOptions(
        paths=paths,
        out=out,
        incidents_out=out.with_suffix(".incidents"),
        progress=False,
        jobs=jobs,
        part_bytes=part_bytes,
        agency_id="so-tttt",
        warm_up_secs=warm_up_secs,
    )
    return run_scan(options, stderr=io.StringIO(), rules=rules)


def comparable(summary: ScanSummary) -> dict:
    """Everything the summary reports except the time taken."""
    return {
        "read": summary.read,
        "alerts": summary.alerts,
        "by_level": summary.by_level,
        "by_rule": summary.by_rule,
        "by_host": summary.by_host,
        "by_source": summary.by_source,
        "by_dataset": summary.by_dataset,
        "correlation": summary.correlation,
        "incidents": (summary.incidents, summary.incidents_by_level, summary.top_incidents),
    }


def multi_chunk_evtx(path: Path, copies: int) -> Path:
    """An EVTX file of ``copies`` chunks: the sample's one chunk again and again (the same
    records, so the same event ids: a scan must find each copy's alerts)."""
    sample = (FILES / "security_sample.evtx").read_bytes()
    path.write_bytes(sample[:EVTX_HEADER_BYTES] + sample[EVTX_HEADER_BYTES:] * copies)
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The bundled samples plus generated logs in which brute forces and spraying cross the
    boundaries of many parts, so correlation windows span work done by different workers,
    and an EVTX file of several chunks, read in chunk ranges by different workers."""
    folder = tmp_path_factory.mktemp("corpus")
    for kind in ("linux", "web", "cef"):
        (folder / f"{kind}.log").write_text(
            "\n".join(generate(kind, 6_000, attacks=12)) + "\n", encoding="utf-8"
        )
    multi_chunk_evtx(folder / "security.evtx", 5)
    return [REPO / "samples", folder]


@pytest.mark.parametrize(
    ("part_bytes", "warm_up_secs"), [(8 << 10, 0.0), (100 << 10, 0.0), (64 << 10, 0.05)]
)
def test_parallel_scan_writes_exactly_what_one_process_writes(
    corpus: list[Path], tmp_path: Path, part_bytes: int, warm_up_secs: float
) -> None:
    one, many = tmp_path / "one.jsonl", tmp_path / "many.jsonl"
    sequential = scan(corpus, one, jobs=1)
    parallel = scan(corpus, many, jobs=2, part_bytes=part_bytes, warm_up_secs=warm_up_secs)
    assert sequential.alerts > 100
    assert sequential.correlation.alerts > 0
    assert many.read_bytes() == one.read_bytes()
    assert many.with_suffix(".incidents").read_bytes() == one.with_suffix(".incidents").read_bytes()
    assert sequential.incidents > 10
    assert comparable(parallel) == comparable(sequential)


def test_parallel_scan_of_sigmahq_windows_rules_on_evtx_chunks(tmp_path: Path) -> None:
    # Every SigmaHQ Windows rule over an EVTX file cut into single chunks: the rule groups
    # and lazily built matchers of forked workers give the alerts of one process.
    rules = RuleCache(tmp_path / "cache").load([shared_data("sigma", "rules", "windows")])
    evtx = multi_chunk_evtx(tmp_path / "security.evtx", 6)
    one, many = tmp_path / "one.jsonl", tmp_path / "many.jsonl"
    sequential = scan([evtx], one, jobs=1, rules=rules)
    parallel = scan([evtx], many, jobs=2, part_bytes=64 << 10, rules=rules)
    assert sequential.alerts == 6
    assert many.read_bytes() == one.read_bytes()
    assert comparable(parallel) == comparable(sequential)


def test_parallel_scan_with_indicators_runs_in_one_process_and_says_so(tmp_path: Path) -> None:
    stderr = io.StringIO()
    options = ScanOptions(
        paths=[REPO / "samples" / "linux"], out=tmp_path / "a.jsonl", progress=False, jobs=2
    )
    summary = run_scan(options, stderr=stderr, indicators=IndicatorStore())
    assert "--jobs ignored" in stderr.getvalue()
    assert summary.alerts > 0


def test_jobs_must_not_be_negative(capsys: pytest.CaptureFixture) -> None:
    assert main(["scan", "samples/linux", "--jobs", "-1", "--no-progress"]) == 2
    assert "--jobs must be 0 (one per CPU) or more" in capsys.readouterr().err


def test_jobs_zero_means_one_worker_per_cpu(tmp_path: Path) -> None:
    outputs = []
    for jobs in ("1", "0"):
        out = tmp_path / f"{jobs}.jsonl"
        assert (
            main(["scan", "samples/linux", "--jobs", jobs, "--no-progress", "--out", str(out)]) == 0
        )
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    assert outputs[0]


class CrashingScanner:
    """Reads its parts for real (counting lines), but its process dies on the parts of one
    file: by SIGSEGV, as a native parser's crash ends it, or by ``os._exit`` (the OOM killer).
    ``once``: a folder for a marker; only the first such read crashes (a crash that does
    not repeat, like the one in 200 scans of issue 20)."""

    def __init__(self, poison: str, how: str = "segv", once: Path | None = None) -> None:
        self.poison = poison
        self.how = how
        self.once = once

    def scan(self, part: FilePart) -> PartResult:
        if part.path.name == self.poison:
            marker = self.once / "crashed" if self.once else None
            if marker is None or not marker.exists():
                if marker is not None:
                    marker.touch()
                if self.how == "segv":
                    faulthandler.disable()  # pytest's handler would print the crash
                    os.kill(os.getpid(), signal.SIGSEGV)
                os._exit(9)
        stats = ReadStats(lines=sum(1 for _ in FileEventReader(ParseContext()).read_part(part)))
        return PartResult(part.size, stats)


def three_logs(folder: Path) -> list[Path]:
    paths = []
    for name in ("a.log", "poison.log", "b.log"):
        path = folder / name
        path.write_text("".join(f"{name} line {n}\n" for n in range(2000)))
        paths.append(path)
    return paths


def test_a_worker_crash_costs_the_parts_of_its_file_and_nothing_else(tmp_path: Path) -> None:
    parts = list(split_into_parts(three_logs(tmp_path), 8_000))
    results = list(scan_parts(CrashingScanner("poison.log"), parts, jobs=2))  # type: ignore[arg-type]
    assert len(results) == len(parts)
    poisoned = [
        result
        for part, result in zip(parts, results, strict=True)
        if part.path.name == "poison.log"
    ]
    others = [
        result
        for part, result in zip(parts, results, strict=True)
        if part.path.name != "poison.log"
    ]
    assert sum(result.stats.lines for result in others) == 4000
    assert all(len(result.stats.unreadable_files) == 1 for result in poisoned)
    first = poisoned[0].stats.unreadable_files[0]
    assert "poison.log (bytes 0-8000)" in first and "SIGSEGV" in first, first


def test_a_killed_worker_is_reported_not_waited_for(tmp_path: Path) -> None:
    parts = list(split_into_parts(three_logs(tmp_path), 8_000))
    results = list(scan_parts(CrashingScanner("poison.log", how="exit"), parts, jobs=2))  # type: ignore[arg-type]
    reported = [problem for result in results for problem in result.stats.unreadable_files]
    assert reported and all("ended with status 9" in problem for problem in reported)


def test_a_crash_that_does_not_repeat_costs_nothing(tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    parts = list(split_into_parts(three_logs(tmp_path), 8_000))
    scanner = CrashingScanner("poison.log", once=markers)
    results = list(scan_parts(scanner, parts, jobs=2))  # type: ignore[arg-type]
    assert sum(result.stats.lines for result in results) == 6000
    assert not any(result.stats.unreadable_files for result in results)
    assert list(markers.iterdir()), "no worker crashed: the test proves nothing"

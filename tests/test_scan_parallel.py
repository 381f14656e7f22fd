"""`socpipe scan --jobs`: workers parse and match, this process correlates; the result must
be exactly that of a one-process scan."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from bench.corpus import generate
from socpipe.collectors.files import FilePart, ReadStats, split_into_parts
from socpipe.detectors.indicators import IndicatorStore
from socpipe.pipeline import main
from socpipe.scanner.parallel import PartResult, WorkerDied, scan_parts
from socpipe.scanner.run import ScanOptions, run_scan
from socpipe.scanner.summary import ScanSummary
from tests.conftest import REPO


def scan(paths: list[Path], out: Path, jobs: int, part_bytes: int = 4 << 20) -> ScanSummary:
    options = ScanOptions(
        paths=paths,
        out=out,
        incidents_out=out.with_suffix(".incidents"),
        progress=False,
        jobs=jobs,
        part_bytes=part_bytes,
        agency_id="so-tttt",
    )
    return run_scan(options, stderr=io.StringIO())


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


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The bundled samples plus generated logs in which brute forces and spraying cross the
    boundaries of many parts, so correlation windows span work done by different workers."""
    folder = tmp_path_factory.mktemp("corpus")
    for kind in ("linux", "web", "cef"):
        (folder / f"{kind}.log").write_text(
            "\n".join(generate(kind, 6_000, attacks=12)) + "\n", encoding="utf-8"
        )
    return [REPO / "samples", folder]


@pytest.mark.parametrize("part_bytes", [8 << 10, 100 << 10])
def test_parallel_scan_writes_exactly_what_one_process_writes(
    corpus: list[Path], tmp_path: Path, part_bytes: int
) -> None:
    one, many = tmp_path / "one.jsonl", tmp_path / "many.jsonl"
    sequential = scan(corpus, one, jobs=1)
    parallel = scan(corpus, many, jobs=2, part_bytes=part_bytes)
    assert sequential.alerts > 100
    assert sequential.correlation.alerts > 0
    assert many.read_bytes() == one.read_bytes()
    assert many.with_suffix(".incidents").read_bytes() == one.with_suffix(".incidents").read_bytes()
    assert sequential.incidents > 10
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


class DyingScanner:
    """A worker that is killed (as by the OOM killer) on one part."""

    def scan(self, part: FilePart) -> PartResult:
        if part.start > 0:
            os._exit(9)
        return PartResult(part.size, ReadStats())


def test_a_killed_worker_is_reported_not_waited_for(tmp_path: Path) -> None:
    log = tmp_path / "big.log"
    log.write_text("line\n" * 1000)
    parts = split_into_parts([log], 1000)
    with pytest.raises(WorkerDied, match=r"big.log \(bytes 1000-2000\)"):
        list(scan_parts(DyingScanner(), parts, jobs=2))  # type: ignore[arg-type]

"""Timing a command: its own peak memory (not the benchmark's) and its exit status checked."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bench.measure import BenchError, Quiet, cpu_times, pinned, timed_run


def test_peak_memory_is_the_commands_not_that_of_the_python_that_started_it(
    tmp_path: Path,
) -> None:
    # 300 MiB touched here: a child's peak read with os.wait4 would include them (Linux keeps,
    # at exec, the peak of the memory the child was spawned with).
    ballast = bytearray(300 * 2**20)
    ballast[::4096] = b"\x01" * len(ballast[::4096])
    small = timed_run(
        [sys.executable, "-c", "pass"], cwd=tmp_path, stdout=tmp_path / "o", stderr=tmp_path / "e"
    )
    large = timed_run(
        [sys.executable, "-c", "b = bytearray(400 * 2**20); b[::4096] = b'1' * len(b[::4096])"],
        cwd=tmp_path,
        stdout=tmp_path / "o",
        stderr=tmp_path / "e",
    )
    del ballast
    assert small.peak_rss_mib < 100
    assert large.peak_rss_mib > 400
    assert large.cpu_seconds >= 0 and large.wall_seconds > 0


def test_an_unexpected_exit_status_is_an_error_with_the_command_and_its_stderr(
    tmp_path: Path,
) -> None:
    command = [sys.executable, "-c", "import sys; sys.stderr.write('bad path'); sys.exit(2)"]
    with pytest.raises(BenchError, match="exited with 2, not 0") as raised:
        timed_run(command, cwd=tmp_path, stdout=tmp_path / "o", stderr=tmp_path / "e")
    assert "bad path" in str(raised.value)
    run = timed_run(
        command, cwd=tmp_path, stdout=tmp_path / "o", stderr=tmp_path / "e", expected_exit=2
    )
    assert run.wall_seconds > 0


def test_pinning_prefixes_taskset_only_when_a_cpu_is_given() -> None:
    assert pinned(["socpipe", "scan"], 1) == ["taskset", "-c", "1", "socpipe", "scan"]
    assert pinned(["socpipe", "scan"], None) == ["socpipe", "scan"]


PROC_STAT = """cpu  1000 50 300 8000 200 10 20 5 0 0
cpu0 500 25 150 4000 100 5 10 2 0 0
intr 12345
"""


def test_busy_ticks_are_all_but_idle_and_iowait_of_the_all_cpus_line() -> None:
    assert cpu_times(PROC_STAT) == (1385, 9585)
    with pytest.raises(BenchError, match="no 'cpu' line"):
        cpu_times("intr 1\n")


def test_the_quiet_line_counts_runs_started_on_a_busy_machine() -> None:
    quiet = Quiet(max_busy=0.25, timeout=300, runs=10, busy_starts=3)
    assert quiet.line() == (
        "- Each run waited (up to 300 s) until at most 25% of the CPUs were busy: 7 of 10 runs"
        " started so, 3 on a machine busy with other work"
    )

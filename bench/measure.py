"""Timing a command as a user runs it: a fresh process, wall time from spawn to exit.

Shared by the benchmarks that call command-line tools (``bench.zircolite``,
``bench.startup``) rather than socpipe's functions, so that they measure start-up too and keep
working whatever the project's modules are called.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


class BenchError(Exception):
    """A benchmark cannot run or a measured command failed; the message says which and why."""


@dataclass(frozen=True)
class Run:
    """One finished command."""

    wall_seconds: float
    #: User plus system CPU of the process and of every child it waited for.
    cpu_seconds: float
    #: The largest resident set of the process or of any child it waited for.
    peak_rss_mib: float


def pinned(command: Sequence[str], cpu: int | None) -> list[str]:
    """The command as run on one CPU with ``taskset`` (as printed in the docs), or unchanged."""
    return ["taskset", "-c", str(cpu), *command] if cpu is not None else list(command)


#: GNU time reports the command's peak RSS and CPU (see ``timed_run`` for why not ``wait4``).
GNU_TIME = "/usr/bin/time"


def timed_run(
    command: Sequence[str],
    *,
    cwd: Path,
    stdout: Path,
    stderr: Path,
    env: dict[str, str] | None = None,
    expected_exit: int = 0,
) -> Run:
    """Run ``command`` to its end, its output going to files (large outputs cannot block it);
    any exit status but ``expected_exit`` is an error.

    CPU and peak RSS come from GNU time, which counts the command and every child it reaped
    (worker processes of ``--jobs``). They cannot come from ``os.wait4`` here: Linux records,
    at ``exec``, the peak RSS of the memory the process had before, and a child spawned from
    this Python starts with this Python's memory, so a small command would show this script's
    size. GNU time's child starts from GNU time's few hundred KiB.
    """
    if not os.access(GNU_TIME, os.X_OK):
        raise BenchError(f"{GNU_TIME} not found: install GNU time (Debian package `time`)")
    accounting = stderr.with_name(stderr.name + ".time")
    timed = [GNU_TIME, "-f", "%U %S %M", "-o", str(accounting), *command]
    with stdout.open("wb") as out, stderr.open("wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(timed, cwd=cwd, stdout=out, stderr=err, env=env)
        status = process.wait()
        wall = time.perf_counter() - started
    if status != expected_exit:
        tail = stderr.read_text(encoding="utf-8", errors="replace")[-2000:]
        raise BenchError(
            f"{shell_quote(command)} exited with {status}, not {expected_exit}"
            f" (output in {stdout}, {stderr}); end of its stderr:\n{tail}"
        )
    # With a failing command GNU time writes a line about it first; the numbers come last.
    user, system, peak_kib = accounting.read_text(encoding="utf-8").strip().splitlines()[-1].split()
    return Run(
        wall_seconds=wall,
        cpu_seconds=float(user) + float(system),
        peak_rss_mib=int(peak_kib) / 1024,
    )


def cpu_times(stat: str) -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs from the text of ``/proc/stat``; idle and iowait
    are not busy."""
    for line in stat.splitlines():
        if line.startswith("cpu "):
            ticks = [int(value) for value in line.split()[1:]]
            idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
            # guest time is already counted in user time
            total = sum(ticks[:8])
            return total - idle, total
    raise BenchError("/proc/stat has no 'cpu' line")


def cpu_busy(seconds: float = 1.0) -> float:
    """Share of all CPUs busy over the next ``seconds`` (whoever uses them)."""
    busy_before, total_before = cpu_times(Path("/proc/stat").read_text(encoding="utf-8"))
    time.sleep(seconds)  # the sampling interval, not a wait for anything
    busy_after, total_after = cpu_times(Path("/proc/stat").read_text(encoding="utf-8"))
    elapsed = total_after - total_before
    return (busy_after - busy_before) / elapsed if elapsed > 0 else 0.0


def wait_for_quiet(max_busy: float, timeout: float) -> bool:
    """Wait until the other users of this shared machine leave the CPUs mostly idle (at most
    ``max_busy`` of them busy over one second), for at most ``timeout`` seconds; whether the
    machine was quiet when the wait ended."""
    deadline = time.monotonic() + timeout
    while True:
        if cpu_busy() <= max_busy:
            return True
        if time.monotonic() >= deadline:
            return False


@dataclass
class Quiet:
    """Starts each run when the shared machine is quiet, and counts the runs it could not."""

    max_busy: float
    timeout: float
    runs: int = 0
    busy_starts: int = 0

    @classmethod
    def add_options(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--max-busy",
            type=float,
            default=0.25,
            help="start a run when at most this share of the CPUs is busy (default 0.25)",
        )
        parser.add_argument(
            "--quiet-wait",
            type=float,
            default=300,
            help="seconds to wait for that before starting a run anyway (default 300)",
        )

    @classmethod
    def from_options(cls, args: argparse.Namespace) -> Quiet:
        return cls(args.max_busy, args.quiet_wait)

    def wait(self) -> None:
        self.runs += 1
        if not wait_for_quiet(self.max_busy, self.timeout):
            self.busy_starts += 1

    def line(self) -> str:
        return (
            f"- Each run waited (up to {self.timeout:.0f} s) until at most {self.max_busy:.0%}"
            f" of the CPUs were busy: {self.runs - self.busy_starts} of {self.runs} runs"
            f" started so, {self.busy_starts} on a machine busy with other work"
        )


def spare_cpu() -> int:
    """The CPU a pinned run uses: the highest this process may run on."""
    return max(os.sched_getaffinity(0))


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def machine_line() -> str:
    """CPU, core count (`nproc`) and memory, as the benchmark sections print them."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"- Machine: {cpu_model()}, {len(os.sched_getaffinity(0))} cores (`nproc`),"
        f" {memory:.0f} GiB RAM; Python {platform.python_version()}"
        f" ({platform.python_implementation()})"
    )


def load_line(before: tuple[float, float, float], after: tuple[float, float, float]) -> str:
    """The 1-minute load average around the run: how busy the shared machine was."""
    return (
        f"- Load average (1 min) {before[0]:.2f} before the runs and {after[0]:.2f} after,"
        f" on {len(os.sched_getaffinity(0))} cores shared with other users of the machine"
    )


def git_commit(repository: Path) -> str:
    """Short commit of a checkout, or ``unknown`` when it is not one."""
    try:
        return subprocess.run(
            ["git", "-C", str(repository), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def shell_quote(command: Sequence[str]) -> str:
    """A command as one line to paste into a shell."""
    return " ".join(shlex.quote(part) for part in command)

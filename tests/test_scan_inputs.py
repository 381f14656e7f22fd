"""What `socpipe scan` is given that is not a log file: a FIFO, a device, a file still being
written. None may hang the scan; each is refused or reported with a clear reason."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from socpipe.collectors.files import FileEventReader
from socpipe.collectors.parsers import ParseContext
from tests.conftest import REPO

SSHD = "Mar  3 10:00:01 web01 sshd[1]: Failed password for root from 203.0.113.5 port 1 ssh2\n"


def scan_process(*arguments: str) -> subprocess.CompletedProcess[str]:
    """``socpipe scan`` as its own process, with a deadline far beyond what a refusal
    takes (today's scan never ends on these inputs: the deadline is what fails it)."""
    return subprocess.run(
        [sys.executable, str(REPO / "pipeline.py"), "scan", "--no-progress", *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO,
    )


def test_dev_zero_is_refused_at_once() -> None:
    result = scan_process("/dev/zero")
    assert result.returncode == 2
    assert "not a regular file or folder: /dev/zero" in result.stderr


def test_a_fifo_named_on_the_command_line_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    result = scan_process(str(fifo))
    assert result.returncode == 2
    assert f"not a regular file or folder: {fifo}" in result.stderr


def test_a_fifo_inside_a_folder_is_reported_and_the_rest_is_scanned(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.log")
    (tmp_path / "auth.log").write_text(SSHD)
    result = scan_process(str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert f"unreadable: {tmp_path / 'pipe.log'}: a FIFO, not a regular file: not read" in (
        result.stderr
    )
    assert "events            1" in result.stderr


def test_a_device_found_through_a_link_in_a_folder_is_not_read(tmp_path: Path) -> None:
    (tmp_path / "zero.log").symlink_to("/dev/zero")
    reader = FileEventReader(ParseContext())
    assert list(reader.read(sorted(tmp_path.iterdir()))) == []
    assert reader.stats.unreadable_files == [
        f"{tmp_path / 'zero.log'}: a character device, not a regular file: not read"
    ]


def test_a_file_written_on_during_the_scan_is_read_to_its_size_at_opening(
    tmp_path: Path,
) -> None:
    log = tmp_path / "auth.log"
    log.write_text(SSHD * 10)
    events = FileEventReader(ParseContext()).read([log])
    first = next(events)
    with log.open("a") as handle:  # a writer that never stops would keep a scan going
        handle.write(SSHD * 10)
    assert 1 + len(list(events)) == 10
    assert first["log.offset"] == 0

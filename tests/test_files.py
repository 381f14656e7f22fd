"""Reading files: folders, gzip, bad bytes, giant lines, deterministic ids."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

from collectors.files import FileEventReader, expand_paths, read_lines
from collectors.parsers import ParseContext

CONTEXT = ParseContext(agency_id="so-tttt", reference_time=datetime(2026, 3, 10, tzinfo=UTC))
LINE = b"Mar  3 10:00:01 web01 sshd[1]: Failed password for root from 203.0.113.5 port 1 ssh2"


def read(paths: list[Path], **options: object) -> tuple[list[dict], FileEventReader]:
    reader = FileEventReader(CONTEXT, **options)  # type: ignore[arg-type]
    return list(reader.read(paths)), reader


def test_gzip_and_plain_give_the_same_events(tmp_path: Path) -> None:
    plain = tmp_path / "auth.log"
    plain.write_bytes(LINE + b"\n" + LINE + b"\n")
    packed = tmp_path / "auth.log.1.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    events, _ = read([plain, packed])
    assert len(events) == 4
    assert [e["user.name"] for e in events] == ["root"] * 4


def test_invalid_utf8_and_nul_bytes_are_kept_and_tagged(tmp_path: Path) -> None:
    path = tmp_path / "bad.log"
    path.write_bytes(LINE + b" \xff\xfe\n" + b"nul\x00inside\n")
    events, reader = read([path])
    assert events[0]["event.original"].endswith("ssh2 \\xff\\xfe")
    assert events[0]["tags"] == ["socpipe_invalid_utf8"]
    assert events[0]["user.name"] == "root"
    assert events[1]["event.original"] == "nul\x00inside"
    assert reader.stats.invalid_utf8 == 1


def test_giant_line_is_truncated_tagged_and_the_next_line_survives(tmp_path: Path) -> None:
    path = tmp_path / "giant.log"
    path.write_bytes(b"A" * 50_000 + b"\n" + LINE + b"\n")
    events, reader = read([path], max_line_bytes=4096)
    assert len(events) == 2
    assert len(events[0]["event.original"]) == 4096
    assert "socpipe_truncated" in events[0]["tags"]
    assert events[1]["user.name"] == "root"
    assert events[1]["log.offset"] == 50_001
    assert reader.stats.truncated == 1


def test_read_lines_offsets_and_last_line_without_newline() -> None:
    import io

    lines = list(read_lines(io.BytesIO(b"one\r\ntwo\nthree"), 1024))
    assert lines == [(0, b"one", False), (5, b"two", False), (9, b"three", False)]


def test_unparsed_lines_become_generic_events(tmp_path: Path) -> None:
    path = tmp_path / "odd.log"
    path.write_text("???? something no parser knows\n")
    events, reader = read([path])
    assert events[0]["event.dataset"] == "generic.log"
    assert events[0]["tags"] == ["socpipe_unparsed"]
    assert events[0]["organization.id"] == "so-tttt"
    assert reader.stats.unparsed == 1


def test_ids_are_deterministic_and_distinct_for_repeated_lines(tmp_path: Path) -> None:
    path = tmp_path / "auth.log"
    path.write_bytes(LINE + b"\n" + LINE + b"\n")
    first, _ = read([path])
    second, _ = read([path])
    assert [e["event.id"] for e in first] == [e["event.id"] for e in second]
    assert first[0]["event.id"] != first[1]["event.id"]


def test_folders_are_walked_in_order_without_hidden_files(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "2.log").write_text("x\n")
    (tmp_path / "a.log").write_text("x\n")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "c.log").write_text("x\n")
    assert expand_paths([tmp_path]) == [tmp_path / "a.log", tmp_path / "b" / "2.log"]


def test_missing_and_corrupt_files_are_reported_and_others_read(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.gz"
    corrupt.write_bytes(gzip.compress(LINE + b"\n" * 10)[:20])
    good = tmp_path / "good.log"
    good.write_bytes(LINE + b"\n")
    events, reader = read([tmp_path / "missing.log", corrupt, good])
    assert [e["log.file.path"] for e in events] == [str(good)]
    assert len(reader.stats.unreadable_files) == 2


def test_forced_format_does_not_fall_back_to_detection(tmp_path: Path) -> None:
    path = tmp_path / "mixed.log"
    path.write_bytes(LINE + b"\n" + b'{"a": 1}\n')
    events, reader = read([path], format_name="syslog")
    assert events[0]["event.dataset"] == "system.auth"
    assert events[1]["event.dataset"] == "generic.log"
    assert reader.stats.unparsed == 1

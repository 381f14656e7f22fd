"""Reading files: folders, gzip, bad bytes, giant lines, deterministic ids, file parts."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

import pytest

from socpipe.collectors.files import FileEventReader, expand_paths, split_into_parts
from socpipe.collectors.lines import read_lines
from socpipe.collectors.parsers import ParseContext
from tests.conftest import FILES

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


def _fingerprint(events: list[dict]) -> list[tuple]:
    return [
        (e["event.id"], e["log.offset"], e["event.original"], tuple(e.get("tags", ())))
        for e in events
    ]


@pytest.mark.parametrize("part_bytes", [1, 2, 7, 64, 85, 86, 87, 1000, 10**6])
def test_file_parts_give_every_line_exactly_once(tmp_path: Path, part_bytes: int) -> None:
    # Lines of the same and of varying length, an empty line, CRLF, bad UTF-8, a line over the
    # cap straddling many part boundaries, and a last line without a newline.
    path = tmp_path / "auth.log"
    path.write_bytes(
        LINE
        + b"\n"
        + LINE
        + b"\r\n\n"
        + b"short\n"
        + b"B" * 5000
        + b"\n"
        + LINE
        + b" \xff\n"
        + b"x" * 3
        + b"\n"
        + LINE
    )
    whole, whole_reader = read([path], max_line_bytes=1024)
    in_parts: list[dict] = []
    parts = list(split_into_parts([path], part_bytes))
    assert len(parts) == (
        1 if part_bytes >= path.stat().st_size else -(-path.stat().st_size // part_bytes)
    )
    totals = FileEventReader(CONTEXT).stats
    for part in parts:
        reader = FileEventReader(CONTEXT, max_line_bytes=1024)
        in_parts.extend(reader.read_part(part))
        totals.add(reader.stats)
    assert _fingerprint(in_parts) == _fingerprint(whole)
    assert totals == whole_reader.stats
    assert sum(part.size for part in parts) == path.stat().st_size


def test_gzip_files_are_never_cut(tmp_path: Path) -> None:
    packed = tmp_path / "auth.log.gz"
    packed.write_bytes(gzip.compress((LINE + b"\n") * 100))
    parts = list(split_into_parts([packed], 16))
    assert [(part.start, part.end) for part in parts] == [(0, None)]
    reader = FileEventReader(CONTEXT)
    assert len(list(reader.read_part(parts[0]))) == 100


@pytest.mark.parametrize("part_bytes", [1, 65536, 2 * 65536, 10 * 65536])
def test_evtx_files_are_cut_into_whole_chunks_that_give_every_record_once(
    tmp_path: Path, part_bytes: int
) -> None:
    # Four chunks: the sample's one, four times (the same records, in file order).
    sample = (FILES / "security_sample.evtx").read_bytes()
    path = tmp_path / "big.evtx"
    path.write_bytes(sample[:4096] + sample[4096:] * 4)
    whole_reader = FileEventReader(CONTEXT)
    whole = list(whole_reader.read([path]))
    parts = list(split_into_parts([path], part_bytes))
    chunks_per_part = max(part_bytes // 65536, 1)
    assert len(parts) == -(-4 // chunks_per_part)
    assert all((part.end - 4096) % 65536 == 0 for part in parts[:-1])  # type: ignore[operator]
    in_parts, totals = [], FileEventReader(CONTEXT).stats
    for part in parts:
        reader = FileEventReader(CONTEXT)
        events = list(reader.read_part(part))
        assert len(events) == 7 * min(chunks_per_part, 4)
        in_parts.extend(events)
        totals.add(reader.stats)
    assert len(whole) == 28
    assert in_parts == whole
    assert totals == whole_reader.stats


def test_a_broken_evtx_file_cut_into_parts_is_reported_once(tmp_path: Path) -> None:
    path = tmp_path / "broken.evtx"  # an EVTX file by its name, with no valid header
    path.write_bytes(b"NotEvtx!" + b"\x00" * (3 * 65536))
    whole = FileEventReader(CONTEXT)
    assert list(whole.read([path])) == []
    assert len(whole.stats.unreadable_files) == 1
    totals = FileEventReader(CONTEXT).stats
    for part in split_into_parts([path], 65536):
        reader = FileEventReader(CONTEXT)
        assert list(reader.read_part(part)) == []
        totals.add(reader.stats)
    assert totals == whole.stats

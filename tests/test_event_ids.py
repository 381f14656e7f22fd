"""Event ids: incremental hashing per source gives exactly the documented digest."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.event import SourceEventIds, event_id
from collectors.files import FileEventReader
from collectors.parsers import ParseContext

TEXT = st.text(st.characters(codec=None), max_size=200)  # lone surrogates included


def documented_id(agency: str, source: str, position: int | str, original: str) -> str:
    """The definition the ids have always had: one digest over the joined key."""
    key = f"{agency}\x1f{source}\x1f{position}\x1f{original}"
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


@settings(max_examples=300, deadline=None)
@given(TEXT, TEXT, st.one_of(st.integers(min_value=0), TEXT), TEXT)
def test_incremental_ids_equal_the_documented_digest(
    agency: str, source: str, position: int | str, original: str
) -> None:
    ids = SourceEventIds(agency, source)
    expected = documented_id(agency, source, position, original)
    assert ids.id(position, original) == expected
    assert ids.id(position, original, original.encode("utf-8", "surrogatepass")) == expected
    assert event_id(agency, source, position, original) == expected


def test_one_source_hashes_many_records_independently() -> None:
    """The prefix is copied per record: an earlier record must not leak into the next id."""
    ids = SourceEventIds("so-tttt", "/var/log/auth.log")
    first = ids.id(0, "one")
    ids.id(4, "two")
    assert ids.id(0, "one") == first == documented_id("so-tttt", "/var/log/auth.log", 0, "one")


def test_file_lines_get_ids_of_their_text_valid_or_not(tmp_path: Path) -> None:
    """A valid line is hashed from its bytes as read, an invalid one from its escaped text:
    both must give the id of the text the event carries."""
    path = tmp_path / "auth.log"
    path.write_bytes(b"caf\xc3\xa9 ok\r\nbad \xff byte\n")
    context = ParseContext(agency_id="so-tttt", reference_time=datetime(2026, 3, 10, tzinfo=UTC))
    events = list(FileEventReader(context).read([path]))
    assert [event["event.original"] for event in events] == ["café ok", "bad \\xff byte"]
    for event in events:
        assert event["event.id"] == documented_id(
            "so-tttt", str(path), event["log.offset"], event["event.original"]
        )

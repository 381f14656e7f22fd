import json

import pytest

from socpipe.core import envelope
from socpipe.core.envelope import EnvelopePacker


def event(number: int, host: str = "web01") -> dict:
    return {"event.id": f"e{number}", "host.name": host, "message": f"line {number}\nwith a break"}


def unpacked(value: bytes) -> list[dict]:
    return [envelope.decode(line) for _, line in envelope.unpack(value)]


def test_envelopes_keep_each_keys_events_in_order() -> None:
    packer = EnvelopePacker(max_events=3)
    sent: list[tuple[bytes, bytes]] = []
    for number in range(8):
        key = b"a/web01" if number % 2 else b"a/db01"
        if (full := packer.add(key, envelope.encode(event(number)))) is not None:
            sent.append((key, full))
    sent.extend(packer.drain())
    assert packer.pending_events == 0
    by_key: dict[bytes, list[str]] = {}
    for key, value in sent:
        by_key.setdefault(key, []).extend(doc["event.id"] for doc in unpacked(value))
    assert by_key == {b"a/db01": ["e0", "e2", "e4", "e6"], b"a/web01": ["e1", "e3", "e5", "e7"]}
    assert max(len(unpacked(value)) for _, value in sent) == 3


def test_an_envelope_is_sent_once_it_reaches_the_byte_cap() -> None:
    packer = EnvelopePacker(max_events=1000, max_bytes=200)
    line = envelope.encode(event(1))
    fills = [packer.add(b"k", line) for _ in range(10)]
    first_full = next(i for i, value in enumerate(fills) if value is not None)
    assert (first_full + 1) * (len(line) + 1) >= 200 > first_full * (len(line) + 1)


def test_a_plain_json_record_is_an_envelope_of_one() -> None:
    value = json.dumps(event(5), indent=None).encode()
    assert unpacked(value) == [event(5)]


def test_a_pretty_printed_record_is_one_document() -> None:
    value = json.dumps(event(5), indent=2).encode()
    assert unpacked(value) == [event(5)]


def test_newlines_inside_values_do_not_split_events() -> None:
    assert unpacked(b"\n".join(envelope.encode(event(n)) for n in range(3))) == [
        event(n) for n in range(3)
    ]


def test_lone_surrogates_round_trip_through_the_fallback() -> None:
    odd = {"message": "bad \udcff byte"}
    assert envelope.decode(envelope.encode(odd)) == odd


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"\xff\xfe not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b"", "not JSON"),
        # Deeper than either decoder nests: refused with a reason, never a crash.
        (b'{"a": ' * 100_000 + b"1" + b"}" * 100_000, "not JSON"),
    ],
    ids=["invalid-utf8", "array", "empty", "deeply-nested"],
)
def test_bad_lines_are_named(value: bytes, reason: str) -> None:
    [(_, line)] = list(envelope.unpack(value))
    with pytest.raises(ValueError, match=reason):
        envelope.decode(line)


def test_positions_point_at_the_line_in_the_record() -> None:
    value = b'{"a": 1}\n\n{"b": 2}'
    assert [position for position, _ in envelope.unpack(value)] == [0, 2]

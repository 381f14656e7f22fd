"""Everything socpipe writes is strict JSON, whatever the logs held."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from socpipe.core import envelope, jsontext
from socpipe.pipeline import main


def strictly(data: bytes) -> Any:
    """Parse as a strict reader would: UTF-8, and no NaN or Infinity."""

    def refuse(constant: str) -> object:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(data.decode("utf-8"), parse_constant=refuse)


def test_non_finite_numbers_become_null_at_any_depth() -> None:
    document = {"score": math.nan, "nested": {"list": [math.inf, -math.inf, 1.5]}, "n": 3}
    assert strictly(jsontext.dumps(document)) == {
        "score": None,
        "nested": {"list": [None, None, 1.5]},
        "n": 3,
    }
    # With a lone surrogate beside it, the slow path must clean the numbers too.
    assert strictly(jsontext.dumps({"score": math.nan, "x": "\ud800"})) == {
        "score": None,
        "x": "\ud800",
    }


def test_a_lone_surrogate_is_escaped_not_written_as_invalid_utf8() -> None:
    data = jsontext.dumps({"url.path": "/x\udc80y", "user.name": "Nguyễn"})
    assert strictly(data) == {"url.path": "/x\udc80y", "user.name": "Nguyễn"}
    assert envelope.decode(envelope.encode({"a": "\ud800"})) == {"a": "\ud800"}


def test_a_scan_writes_alerts_of_hostile_json_lines(tmp_path: Path) -> None:
    log = tmp_path / "app.json"
    # A JSON log line whose URL carries a lone surrogate escape and that a rule matches, and
    # one that gets truncated while carrying its own tags as a plain string.
    url = "/x\\ud800/../../etc/passwd"
    matching = (
        f'{{"url": {{"original": "{url}", "decoded": "{url}"}},'
        ' "event": {"module": "web", "dataset": "web.access"}}'
    )
    truncated = '{"tags": "x", "message": "' + "A" * 5000 + '"}'
    log.write_text(matching + "\n" + truncated + "\n")
    out = tmp_path / "alerts.jsonl"
    arguments = ["scan", str(log), "--out", str(out), "--no-progress", "--max-line-bytes", "1024"]
    assert main(arguments) == 0
    alerts = [strictly(line) for line in out.read_bytes().splitlines()]
    assert alerts, "the traversal in the hostile line must raise an alert"
    assert any(str(alert.get("url.original", "")).startswith("/x\ud800") for alert in alerts)

"""`socpipe alerts load FILE.jsonl`: the alerts of a `socpipe scan --out` into the alerts index,
so that a hunt's findings can be triaged in the console.

Idempotent by ``alert.id``: each alert is written with ``create`` under its id, so loading a
file twice, or a file overlapping what the pipeline indexed, adds nothing and never touches an
alert's triage state. Lines that are not alerts are reported with their line number; the rest
are loaded.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from elasticsearch import AsyncElasticsearch, helpers

from socpipe.console.elastic import iso, now

MAX_LINE_BYTES = 16 * 1024 * 1024
REQUIRED = ("alert.id", "rule.id", "@timestamp")
MAX_PROBLEMS_KEPT = 100


@dataclass
class LoadResult:
    created: int = 0
    already_present: int = 0
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0

    def problem(self, text: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS_KEPT:
            self.problems.append(text)


def read_alerts(
    path: Path, result: LoadResult, loaded_at: str
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(alert id, document) for every usable line; the others become problems."""
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, 1):
            where = f"{path}:{number}"
            if len(raw) > MAX_LINE_BYTES:
                result.problem(f"{where}: longer than {MAX_LINE_BYTES} bytes")
                continue
            if not raw.strip():
                continue
            try:
                document = json.loads(raw)
            except (ValueError, RecursionError) as error:
                result.problem(f"{where}: not JSON: {error}")
                continue
            if not isinstance(document, dict):
                result.problem(f"{where}: not a JSON object")
                continue
            missing = [name for name in REQUIRED if not isinstance(document.get(name), str)]
            if missing:
                result.problem(f"{where}: not an alert (no {', '.join(missing)})")
                continue
            document.setdefault("alert.status", "new")
            if document["alert.status"] not in ("new", "acknowledged", "in_progress", "closed"):
                result.problem(f"{where}: unknown alert.status {document['alert.status']!r:.40}")
                continue
            # A scan does not stamp when it detected: the alert enters the queue now.
            document.setdefault("alert.detected", loaded_at)
            document.setdefault("organization.id", "unknown")
            yield document["alert.id"], document


async def load_alerts(client: AsyncElasticsearch, index: str, path: Path) -> LoadResult:
    result = LoadResult()
    loaded_at = iso(now())

    async def actions() -> AsyncIterator[dict[str, Any]]:
        for ident, document in read_alerts(path, result, loaded_at):
            yield {"_op_type": "create", "_index": index, "_id": ident, "_source": document}

    async for ok, item in helpers.async_streaming_bulk(
        client,
        actions(),
        raise_on_error=False,
        raise_on_exception=True,
        max_retries=3,
        chunk_size=1000,
    ):
        detail = item["create"]
        status = int(detail.get("status", 0))
        if ok or status == 201:
            result.created += 1
        elif status == 409:
            result.already_present += 1
        else:
            error = detail.get("error")
            reason = error.get("reason") if isinstance(error, dict) else error
            result.problem(f"{path}: alert {detail.get('_id')}: refused: HTTP {status} {reason}")
    await client.indices.refresh(index=index)
    return result

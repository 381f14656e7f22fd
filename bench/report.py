"""Write a benchmark's results into docs/benchmarks.md between its markers."""

from __future__ import annotations

from pathlib import Path

DOCUMENT = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def write_section(name: str, lines: list[str], heading: str) -> Path:
    """Replace the section between ``<!-- name results start/end -->``, or append it."""
    start, end = f"<!-- {name} results start -->", f"<!-- {name} results end -->"
    section = "\n".join([start, *lines, end])
    text = DOCUMENT.read_text(encoding="utf-8")
    if start in text:
        text = text[: text.index(start)] + section + text[text.index(end) + len(end) :]
    else:
        text += f"\n{heading}\n\n{section}\n"
    DOCUMENT.write_text(text, encoding="utf-8")
    return DOCUMENT

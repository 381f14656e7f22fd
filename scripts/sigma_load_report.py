"""Write docs/sigma-load-report.md: how the SigmaHQ rule set loads into socpipe.

.venv/bin/python scripts/sigma_load_report.py [SIGMA_FOLDER]
"""

from __future__ import annotations

import logging
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from socpipe.detectors.rules import load_rules  # noqa: E402


class _Count(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO.parent / "shared" / "data" / "sigma"
    fallbacks = _Count()
    logging.getLogger("socpipe.detectors.regex").addHandler(fallbacks)
    started = time.perf_counter()
    report = load_rules([folder])
    seconds = time.perf_counter() - started
    by_folder: Counter[str] = Counter()
    compiled_by_folder: Counter[str] = Counter()
    for path in folder.rglob("*.yml"):
        by_folder["/".join(path.relative_to(folder).parts[:2])] += 1
    for rule in report.rules:
        compiled_by_folder["/".join(Path(rule.source).relative_to(folder).parts[:2])] += 1
    prefiltered = sum(bool(rule.prefilter) for rule in report.rules)
    lines = [
        "# SigmaHQ rule set: load report",
        "",
        f"Made by `scripts/sigma_load_report.py` on {time.strftime('%Y-%m-%d')} from `{folder.name}/`"
        " (the SigmaHQ snapshot in `../shared/data/sigma/`, commit 8eaafff, 2026-08-05).",
        "",
        f"- Rule files: {report.files:,}",
        f"- Compiled: **{len(report.rules):,}**",
        f"- Errors: {len(report.errors):,}",
        f"- Unsupported (valid, feature not implemented): {len(report.unsupported):,}",
        f"- Regexes that need Python `re` (not RE2-compatible): {len(fallbacks.messages):,}",
        f"- Rules with a prefilter (skipped for events lacking their literals or regexes): {prefiltered:,}"
        f" ({prefiltered / max(len(report.rules), 1):.0%}); the others are evaluated on every event of their log source",
        f"- Load time (parse with pySigma, map fields, compile): {seconds:.1f} s",
        "",
        "Compiling is not the same as seeing matching events: a rule runs on the events of its log",
        "source, and socpipe's parsers produce Windows (EVTX, Winlogbeat, NXLog), Linux (syslog",
        "programs, auditd), web server and firewall/IDS (CEF) events. Cloud, macOS, application and",
        "most network-product rules compile but meet no event until a parser for their source exists.",
        "",
        "| folder | files | compiled |",
        "| --- | ---: | ---: |",
        *(
            f"| {name} | {count:,} | {compiled_by_folder[name]:,} |"
            for name, count in sorted(by_folder.items())
        ),
    ]
    if report.errors:
        lines += [
            "",
            "## Errors",
            "",
            *(f"- `{error.source}`: {error.reason}" for error in report.errors),
        ]
    if report.unsupported:
        lines += [
            "",
            "## Unsupported",
            "",
            *(f"- `{error.source}`: {error.reason}" for error in report.unsupported),
        ]
    if fallbacks.messages:
        lines += [
            "",
            "## Regexes on Python re",
            "",
            *(f"- {message}" for message in fallbacks.messages),
        ]
    target = REPO / "docs" / "sigma-load-report.md"
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{len(report.rules)} of {report.files} compiled; written to {target}")


if __name__ == "__main__":
    main()

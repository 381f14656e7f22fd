"""Grouping accuracy of socpipe's template miner on the loghub 2k samples.

python -m bench.anomaly        (this and the HDFS evaluation)
"""

from __future__ import annotations

import csv
from pathlib import Path

from socpipe.detectors.anomaly.templates import TemplateVocabulary, grouping_accuracy

DEFAULT_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "loghub" / "2k"


def system_accuracy(folder: Path) -> tuple[int, int, float]:
    """(messages, true templates, grouping accuracy) for one loghub system."""
    structured = folder / f"{folder.name}_2k.log_structured.csv"
    with structured.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    vocabulary = TemplateVocabulary()
    vocabulary.learn(row["Content"] for row in rows)
    # Judge the final templates: Drain's clusters keep generalising while it learns.
    predicted = [vocabulary.template_of(row["Content"]) for row in rows]
    truth = [row["EventId"] for row in rows]
    return len(rows), len(set(truth)), grouping_accuracy(truth, predicted)


def report_lines(data: Path = DEFAULT_DATA) -> list[str]:
    lines = [
        "| system | messages | true templates | grouping accuracy |",
        "| --- | ---: | ---: | ---: |",
    ]
    accuracies = []
    for folder in sorted(path for path in data.iterdir() if path.is_dir()):
        messages, templates, accuracy = system_accuracy(folder)
        accuracies.append(accuracy)
        lines.append(f"| {folder.name} | {messages:,} | {templates} | {accuracy:.3f} |")
    lines.append(f"| **mean** | | | **{sum(accuracies) / len(accuracies):.3f}** |")
    return lines

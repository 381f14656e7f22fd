"""HDFS-100k anomaly detection with loglizer's split, and the ceiling the data allows.

Split (loglizer ``load_HDFS``, ``train_ratio=0.5``, ``split_type='uniform'``): sessions in
first-appearance order; the first half of the anomalies and the first half of the normal
sessions train, the rest test. socpipe's model is unsupervised: it learns from the normal
training sessions only.

    python -m bench.anomaly        (this and the template-mining evaluation)
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from socpipe.detectors.anomaly.sequence import DEFAULT_REACH, TransitionModel

DEFAULT_DATA = (
    Path(__file__).resolve().parents[2].parent / "shared" / "data" / "loghub" / "hdfs_100k"
)
#: Loglizer's implementations measured on this split (issue 4).
BASELINES = {
    "PCA": 0.53,
    "Isolation Forest": 0.60,
    "Invariants Mining": 0.71,
    "Log Clustering": 0.71,
    "Decision tree (supervised)": 0.60,
}


@dataclass(frozen=True)
class HdfsResult:
    reach: int
    train_sessions: int
    test_sessions: int
    test_anomalies: int
    true_positives: int
    false_positives: int
    ceiling_recall: float

    @property
    def precision(self) -> float:
        flagged = self.true_positives + self.false_positives
        return self.true_positives / flagged if flagged else 0.0

    @property
    def recall(self) -> float:
        return self.true_positives / self.test_anomalies

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0

    @property
    def ceiling_f1(self) -> float:
        """F1 with perfect precision and the best recall the data allows."""
        return 2 * self.ceiling_recall / (1 + self.ceiling_recall)


def load_sessions(data: Path) -> list[tuple[list[str], bool]]:
    with (data / "HDFS_100k.event_traces.csv").open(newline="", encoding="utf-8") as handle:
        return [
            (row["EventSequence"].split(), row["Label"] == "Anomaly")
            for row in csv.DictReader(handle)
        ]


def loglizer_split(
    sessions: list[tuple[list[str], bool]],
) -> tuple[list[tuple[list[str], bool]], list[tuple[list[str], bool]]]:
    anomalies = [session for session in sessions if session[1]]
    normal = [session for session in sessions if not session[1]]
    half_anomalies, half_normal = len(anomalies) // 2, len(normal) // 2
    train = anomalies[:half_anomalies] + normal[:half_normal]
    test = anomalies[half_anomalies:] + normal[half_normal:]
    return train, test


def evaluate_hdfs(data: Path = DEFAULT_DATA, reach: int = DEFAULT_REACH) -> HdfsResult:
    train, test = loglizer_split(load_sessions(data))
    model = TransitionModel(reach).fit(sequence for sequence, anomalous in train if not anomalous)
    flagged = [(model.is_anomalous(sequence), anomalous) for sequence, anomalous in test]
    # The ceiling: a test anomaly whose sequence equals some normal session's cannot be flagged
    # without flagging that normal session too.
    normal_sequences = {tuple(sequence) for sequence, anomalous in train + test if not anomalous}
    test_anomalies = [sequence for sequence, anomalous in test if anomalous]
    separable = sum(1 for sequence in test_anomalies if tuple(sequence) not in normal_sequences)
    return HdfsResult(
        reach=reach,
        train_sessions=len(train),
        test_sessions=len(test),
        test_anomalies=len(test_anomalies),
        true_positives=sum(1 for hit, anomalous in flagged if hit and anomalous),
        false_positives=sum(1 for hit, anomalous in flagged if hit and not anomalous),
        ceiling_recall=separable / len(test_anomalies),
    )


def report_lines(data: Path = DEFAULT_DATA) -> list[str]:
    """A Markdown table of the model at every reach, with the ceiling and the baselines."""
    shipped = evaluate_hdfs(data)
    lines = [
        f"Split: {shipped.train_sessions:,} training sessions (normal ones used),"
        f" {shipped.test_sessions:,} test sessions of which {shipped.test_anomalies} anomalies.",
        "",
        "| model | precision | recall | F1 | TP / FP |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for reach in range(1, 11):
        result = shipped if reach == DEFAULT_REACH else evaluate_hdfs(data, reach)
        name = f"socpipe transitions, reach {reach}"
        if reach == DEFAULT_REACH:
            name = f"**{name} (shipped default)**"
        lines.append(
            f"| {name} | {result.precision:.3f} | {result.recall:.3f} | {result.f1:.3f}"
            f" | {result.true_positives} / {result.false_positives} |"
        )
    lines.append(
        f"| ceiling (perfect precision) | 1.000 | {shipped.ceiling_recall:.3f}"
        f" | {shipped.ceiling_f1:.3f} | |"
    )
    lines.extend(f"| loglizer {name} | | | {f1:.2f} | |" for name, f1 in BASELINES.items())
    return lines

"""HDFS-100k anomaly detection with loglizer's split: hyper-parameters chosen on the training
part, the test split judged once, and the ceiling the data allows.

Split (loglizer ``load_HDFS``, ``train_ratio=0.5``, ``split_type='uniform'``): sessions in
first-appearance order; the first half of the anomalies and the first half of the normal
sessions train, the rest test. socpipe's model is unsupervised: it learns from normal
training sessions only. Its hyper-parameters (``reach``, ``min_unseen_steps``) are chosen by
5-fold cross-validation on the training part (detectors/anomaly/selection.py); the test
labels are read only to score the one chosen model.

    python -m bench.anomaly        (this and the template-mining evaluation)
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from socpipe.detectors.anomaly.selection import (
    Judged,
    Labelled,
    average_precision,
    cross_validate,
    precision_at_budget,
)
from socpipe.detectors.anomaly.sequence import TransitionModel

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
#: Sessions an analyst reviews: precision among the most unusual ones. 100 is the headline
#: (2.5 % of the test sessions, fewer than its 157 anomalies).
BUDGETS = (50, 100, 200)


@dataclass(frozen=True)
class HdfsResult:
    chosen: Judged
    candidates: list[Judged]
    train_sessions: int
    train_anomalies: int
    test_sessions: int
    test_anomalies: int
    true_positives: int
    false_positives: int
    ceiling_recall: float
    #: Budget -> precision of that many most unusual test sessions.
    precision_at: dict[int, float]
    test_average_precision: float

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


def choose(train: Sequence[Labelled]) -> tuple[Judged, list[Judged]]:
    """The chosen hyper-parameters and every candidate, from the training part alone."""
    candidates = cross_validate(list(train))
    return candidates[0], candidates


def evaluate_hdfs(data: Path = DEFAULT_DATA) -> HdfsResult:
    return evaluate(*loglizer_split(load_sessions(data)))


def evaluate(train: list[tuple[list[str], bool]], test: list[tuple[list[str], bool]]) -> HdfsResult:
    """Choose on ``train``, then judge the chosen model on ``test``."""
    chosen, candidates = choose(list(train))
    model = TransitionModel(chosen.reach, chosen.min_unseen_steps).fit(
        sequence for sequence, anomalous in train if not anomalous
    )
    # From here on the test labels are read, once, for the chosen model only.
    flagged = [(model.is_anomalous(sequence), anomalous) for sequence, anomalous in test]
    scored = [(model.score(sequence), anomalous) for sequence, anomalous in test]
    # The ceiling: a test anomaly whose sequence equals some normal session's cannot be flagged
    # without flagging that normal session too.
    normal_sequences = {tuple(sequence) for sequence, anomalous in train + test if not anomalous}
    test_anomalies = [sequence for sequence, anomalous in test if anomalous]
    separable = sum(1 for sequence in test_anomalies if tuple(sequence) not in normal_sequences)
    return HdfsResult(
        chosen=chosen,
        candidates=candidates,
        train_sessions=len(train),
        train_anomalies=sum(1 for _, anomalous in train if anomalous),
        test_sessions=len(test),
        test_anomalies=len(test_anomalies),
        true_positives=sum(1 for hit, anomalous in flagged if hit and anomalous),
        false_positives=sum(1 for hit, anomalous in flagged if hit and not anomalous),
        ceiling_recall=separable / len(test_anomalies),
        precision_at={budget: precision_at_budget(scored, budget) for budget in BUDGETS},
        test_average_precision=average_precision(scored),
    )


def report_lines(data: Path = DEFAULT_DATA) -> list[str]:
    """Markdown: the cross-validation on the training part, then the one test result."""
    result = evaluate_hdfs(data)
    chosen = result.chosen
    lines = [
        f"Split: {result.train_sessions:,} training sessions ({result.train_anomalies} anomalies),"
        f" {result.test_sessions:,} test sessions ({result.test_anomalies} anomalies).",
        "",
        "**Choosing on the training part** (5-fold cross-validation: each fold judged by a"
        " model fitted on the other folds' normal sessions; ranked by F1, then by the average"
        " precision of the ranking, then by the smaller reach). The best `min_unseen_steps` for"
        " each reach:",
        "",
        "| reach | min unseen steps | CV precision | CV recall | CV F1 | CV average precision |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    best_per_reach: dict[int, Judged] = {}
    for judged in result.candidates:
        best_per_reach.setdefault(judged.reach, judged)
    for reach in sorted(best_per_reach):
        judged = best_per_reach[reach]
        mark = "**" if judged == chosen else ""
        lines.append(
            f"| {mark}{reach}{mark} | {judged.min_unseen_steps} | {judged.precision:.3f}"
            f" | {judged.recall:.3f} | {judged.f1:.4f} | {judged.average_precision:.4f} |"
        )
    lines += [
        "",
        f"Chosen: reach {chosen.reach}, min_unseen_steps {chosen.min_unseen_steps} (the shipped"
        " defaults). **The test split, judged once:**",
        "",
        "| model | precision | recall | F1 | TP / FP |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| **socpipe transitions, reach {chosen.reach}** | {result.precision:.3f}"
        f" | {result.recall:.3f} | **{result.f1:.3f}**"
        f" | {result.true_positives} / {result.false_positives} |",
        f"| ceiling (perfect precision) | 1.000 | {result.ceiling_recall:.3f}"
        f" | {result.ceiling_f1:.3f} | |",
        *(f"| loglizer {name} | | | {f1:.2f} | |" for name, f1 in BASELINES.items()),
        "",
        "Precision at an alert budget (the analyst reviews the N most unusual test sessions;"
        f" ranking average precision {result.test_average_precision:.3f}):",
        "",
        "| budget (sessions reviewed) | precision | anomalies found |",
        "| ---: | ---: | ---: |",
    ]
    for budget, precision in result.precision_at.items():
        lines.append(
            f"| {budget} | {precision:.3f} | {precision * budget:.0f} of {result.test_anomalies} |"
        )
    return lines

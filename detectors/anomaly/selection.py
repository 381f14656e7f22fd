"""Choosing a sequence model's hyper-parameters without looking at the test data.

Cross-validation on the training part only: the training sessions (normal and anomalous,
in their order) are cut into ``folds`` contiguous folds; for each fold, a model is fitted on
the normal sessions of the other folds (the model never sees an anomaly) and judges every
session of the fold. Each candidate (``reach``, ``min_unseen_steps``) is scored on the
judgements of all folds pooled:

1. the F1 of its decision (what alerts it raises);
2. ties broken by the average precision of its ranking (:meth:`TransitionModel.score`:
   what an analyst who reviews the most unusual sessions first gets);
3. then the smaller reach and the smaller ``min_unseen_steps`` (the simpler model).

The chosen candidate is then fitted on all normal training sessions and judged once on the
test split (bench/anomaly/hdfs.py). Labels of the training part are used to choose, never to
fit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from socpipe.detectors.anomaly.sequence import TransitionModel

Labelled = tuple[Sequence[str], bool]


@dataclass(frozen=True)
class Judged:
    """Pooled counts of one candidate over the folds."""

    reach: int
    min_unseen_steps: int
    true_positives: int
    false_positives: int
    false_negatives: int
    average_precision: float

    @property
    def precision(self) -> float:
        flagged = self.true_positives + self.false_positives
        return self.true_positives / flagged if flagged else 0.0

    @property
    def recall(self) -> float:
        positives = self.true_positives + self.false_negatives
        return self.true_positives / positives if positives else 0.0

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0

    def rank(self) -> tuple[float, float, int, int]:
        """Sort key, best first."""
        return (-self.f1, -self.average_precision, self.reach, self.min_unseen_steps)


def average_precision(scored: Iterable[tuple[tuple[int, float], bool]]) -> float:
    """Mean precision at each anomaly's rank, most unusual first. Sessions of equal score are
    taken as one block, each of its anomalies at the block's mean precision (no order is
    invented inside a tie)."""
    ordered = sorted(scored, key=lambda item: item[0], reverse=True)
    positives = sum(1 for _, anomalous in ordered if anomalous)
    if not positives:
        return 0.0
    total, seen, found = 0.0, 0, 0
    position = 0
    while position < len(ordered):
        end = position
        while end < len(ordered) and ordered[end][0] == ordered[position][0]:
            end += 1
        block = ordered[position:end]
        hits = sum(1 for _, anomalous in block if anomalous)
        for index in range(1, hits + 1):
            # The index-th anomaly of the block sits, on average, at this rank.
            rank = seen + index * (len(block) + 1) / (hits + 1)
            total += (found + index) / rank
        seen += len(block)
        found += hits
        position = end
    return total / positives


def precision_at_budget(scored: Sequence[tuple[tuple[int, float], bool]], budget: int) -> float:
    """Precision of the ``budget`` most unusual sessions (what an analyst who reviews that
    many gets); a tie across the budget's edge counts by the share of it that fits."""
    ordered = sorted(scored, key=lambda item: item[0], reverse=True)
    budget = min(budget, len(ordered))
    if budget <= 0:
        return 0.0
    edge = ordered[budget - 1][0]
    above = [anomalous for score, anomalous in ordered if score > edge]
    tied = [anomalous for score, anomalous in ordered if score == edge]
    room = budget - len(above)
    hits = sum(above) + room * sum(tied) / len(tied)
    return hits / budget


def _folds(items: list[Labelled], folds: int) -> list[list[Labelled]]:
    size = len(items)
    return [items[index * size // folds : (index + 1) * size // folds] for index in range(folds)]


def cross_validate(
    training: Sequence[Labelled],
    reaches: Iterable[int] = range(1, 11),
    min_unseen: Iterable[int] = (1, 2, 3),
    folds: int = 5,
) -> list[Judged]:
    """Every candidate judged by cross-validation on ``training`` (module docstring), best
    first."""
    parts = _folds(list(training), folds)
    thresholds = sorted(min_unseen)
    judged = []
    for reach in reaches:
        counts = {threshold: [0, 0, 0] for threshold in thresholds}
        scored: list[tuple[tuple[int, float], bool]] = []
        for held_out in range(folds):
            normal = (
                session
                for index, part in enumerate(parts)
                if index != held_out
                for session, anomalous in part
                if not anomalous
            )
            model = TransitionModel(reach).fit(normal)
            for session, anomalous in parts[held_out]:
                score = model.score(session)
                scored.append((score, anomalous))
                for threshold in thresholds:
                    flagged = score[0] >= threshold
                    tally = counts[threshold]
                    tally[0] += flagged and anomalous
                    tally[1] += flagged and not anomalous
                    tally[2] += anomalous and not flagged
        precision = average_precision(scored)
        for threshold, (tp, fp, fn) in counts.items():
            judged.append(Judged(reach, threshold, tp, fp, fn, precision))
    return sorted(judged, key=Judged.rank)

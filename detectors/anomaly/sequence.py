"""An order-aware model of template sequences, trained on normal sessions only.

A session is anomalous when it takes at least ``min_unseen_steps`` steps (template ``a``
followed by template ``b``, counting the start ``^`` and the end ``$`` of the session) that no
normal session took. Count vectors cannot see such steps: a block whose write ended right
after "Receiving block" has the same counts as the first half of a normal write.

Concurrent work interleaves in logs (HDFS writes each block to three datanodes at once), so a
step counts as seen when ``b`` followed ``a`` within ``reach`` events in some normal session,
not only right after it.

``reach`` and ``min_unseen_steps`` are the model's hyper-parameters. Their defaults were
chosen by cross-validation on the training part of the HDFS benchmark, never on its test
split (detectors/anomaly/selection.py, docs/anomaly.md).

Sessions are also ranked (:meth:`TransitionModel.score`), for an analyst who can look at only
so many: by their number of unseen steps, then by how rare their other steps were in
training.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Iterable, Sequence

START, END = "^", "$"
#: Chosen by `python -m bench.anomaly` (5-fold cross-validation on HDFS's training part).
DEFAULT_REACH = 7
DEFAULT_MIN_UNSEEN_STEPS = 1


def _framed(session: Sequence[str]) -> list[str]:
    return [START, *session, END]


class TransitionModel:
    #: Models pickled before this parameter existed flag on one unseen step.
    min_unseen_steps = DEFAULT_MIN_UNSEEN_STEPS

    def __init__(
        self, reach: int = DEFAULT_REACH, min_unseen_steps: int = DEFAULT_MIN_UNSEEN_STEPS
    ) -> None:
        if reach < 1:
            raise ValueError("reach must be at least 1")
        if min_unseen_steps < 1:
            raise ValueError("min_unseen_steps must be at least 1")
        self.reach = reach
        self.min_unseen_steps = min_unseen_steps
        self.known: set[tuple[str, str]] = set()
        #: Training sessions that took each step (within reach), for ranking.
        self.support: Counter[tuple[str, str]] = Counter()
        self.sessions_trained = 0

    def fit(self, sessions: Iterable[Sequence[str]]) -> TransitionModel:
        for session in sessions:
            framed = _framed(session)
            steps: set[tuple[str, str]] = set()
            for position, template in enumerate(framed):
                for following in framed[position + 1 : position + 1 + self.reach]:
                    steps.add((template, following))
            self.known.update(steps)
            self.support.update(steps)
            self.sessions_trained += 1
        return self

    def unseen_steps(self, session: Sequence[str]) -> list[tuple[str, str]]:
        """The steps of a session that no normal session took, in order (repeats once)."""
        framed = _framed(session)
        unseen: dict[tuple[str, str], None] = {}
        for step in itertools.pairwise(framed):
            if step not in self.known:
                unseen[step] = None
        return list(unseen)

    def is_anomalous(self, session: Sequence[str]) -> bool:
        return len(self.unseen_steps(session)) >= self.min_unseen_steps

    def score(self, session: Sequence[str]) -> tuple[int, float]:
        """How unusual a session is, most unusual highest: its number of unseen steps, then
        the rarity of its seen steps (the sum of ``log((N + 1) / (k + 1))`` over its distinct
        steps, a step taken by k of the N training sessions; common steps add almost nothing).
        """
        support = getattr(self, "support", None) or {}
        total = self.sessions_trained + 1
        unseen, rarity = 0, 0.0
        for step in set(itertools.pairwise(_framed(session))):
            if step not in self.known:
                unseen += 1
            elif support:
                rarity += math.log(total / (support.get(step, 0) + 1))
        return unseen, rarity

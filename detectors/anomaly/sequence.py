"""An order-aware model of template sequences, trained on normal sessions only.

A session is anomalous when it takes a step (template ``a`` followed by template ``b``,
counting the start ``^`` and the end ``$`` of the session) that no normal session took.
Count vectors cannot see such steps: a block whose write ended right after "Receiving block"
has the same counts as the first half of a normal write.

Concurrent work interleaves in logs (HDFS writes each block to three datanodes at once), so a
step counts as seen when ``b`` followed ``a`` within ``reach`` events in some normal session,
not only right after it. ``reach`` is the model's one parameter; docs/benchmarks.md shows how
results move with it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

START, END = "^", "$"
DEFAULT_REACH = 5


def _framed(session: Sequence[str]) -> list[str]:
    return [START, *session, END]


class TransitionModel:
    def __init__(self, reach: int = DEFAULT_REACH) -> None:
        if reach < 1:
            raise ValueError("reach must be at least 1")
        self.reach = reach
        self.known: set[tuple[str, str]] = set()
        self.sessions_trained = 0

    def fit(self, sessions: Iterable[Sequence[str]]) -> TransitionModel:
        for session in sessions:
            framed = _framed(session)
            for position, template in enumerate(framed):
                for following in framed[position + 1 : position + 1 + self.reach]:
                    self.known.add((template, following))
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
        return bool(self.unseen_steps(session))

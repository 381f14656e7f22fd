"""Anomaly models at work on an event stream: windows close, get scored, and become alerts."""

from __future__ import annotations

import hashlib
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from socpipe.core.event import Event
from socpipe.detectors.alert import Alert
from socpipe.detectors.anomaly.behaviour import WINDOW_BYTES, BehaviourModel, Window, entity_value
from socpipe.detectors.anomaly.sequence import TransitionModel
from socpipe.detectors.anomaly.templates import TemplateVocabulary
from socpipe.detectors.anomaly.windows import TumblingWindows

W = TypeVar("W")
#: A session scores its first this many events (their steps); the rest only extend its time.
MAX_SESSION_STEPS = 10_000
#: An empty session, and what a step costs beyond its template string (its list slot).
SESSION_BYTES = 400
STEP_BYTES = 8
#: Estimated bytes of one model's open windows at most (stages.anomaly_max_bytes).
DEFAULT_MAX_BYTES = 64 << 20


@dataclass(frozen=True)
class ModelInfo:
    """An anomaly model in the role of a rule, so its alerts look like every other alert."""

    id: str
    title: str
    level: str
    source: str
    description: str
    ruleset: str = "anomaly-models"
    tags: tuple[str, ...] = ()
    author: str = "socpipe train"
    references: tuple[str, ...] = ()


@dataclass
class Session:
    """The template sequence of one session (a key within a window)."""

    key: str
    start: float
    #: The templates of the session's first ``MAX_SESSION_STEPS`` events, in order.
    templates: list[str] = field(default_factory=list)
    agency: str = "unknown"
    last_time: float = 0.0


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _anomaly_alert(
    info: ModelInfo,
    field_name: str,
    key: str,
    start: float,
    last: float,
    agency: str,
    details: dict[str, Any],
) -> Alert:
    anchor = f"{info.id}\x1f{key}\x1f{start}"
    return Alert(
        id=hashlib.blake2b(anchor.encode(), digest_size=16).hexdigest(),
        rule=info,
        timestamp=iso(last),
        agency=agency,
        entities={field_name: key},
        events=(),
        first_seen=iso(start),
        last_seen=iso(last),
        details={"anomaly.model": info.id, "anomaly.entity_field": field_name, **details},
    )


def behaviour_windows(
    entity_field: str, seconds: float, max_bytes: int | None = None, name: str = "behaviour"
) -> TumblingWindows[Window]:
    return TumblingWindows(
        key_of=lambda event: entity_value(event, entity_field),
        open_window=lambda key, start: (Window(key, start), WINDOW_BYTES),
        add=lambda window, event, moment: window.add(event, moment),
        seconds=seconds,
        max_bytes=max_bytes,
        name=name,
    )


def message_of(event: Event) -> str:
    return str(event.get("message") or event.get("event.original") or "")


def session_windows(
    session_field: str,
    seconds: float,
    template_of: Any,
    max_bytes: int | None = None,
    name: str = "log-pattern",
) -> TumblingWindows[Session]:
    def add(session: Session, event: Event, moment: float) -> int:
        session.agency = str(event.get("organization.id", session.agency))
        session.last_time = max(session.last_time, moment)
        if len(session.templates) >= MAX_SESSION_STEPS:
            return 0
        template = template_of(message_of(event))
        session.templates.append(template)
        return sys.getsizeof(template) + STEP_BYTES

    return TumblingWindows(
        key_of=lambda event: entity_value(event, session_field),
        open_window=lambda key, start: (Session(key, start), SESSION_BYTES),
        add=add,
        seconds=seconds,
        max_bytes=max_bytes,
        name=name,
    )


class _WindowScorer(ABC, Generic[W]):
    """Feeds events to tumbling windows and scores each window as it closes."""

    windows: TumblingWindows[W]

    def observe(self, event: Event) -> list[Alert]:
        return self._score(self.windows.observe(event))

    def flush(self) -> list[Alert]:
        return self._score(self.windows.flush())

    @abstractmethod
    def _score(self, closed: list[W]) -> list[Alert]: ...


class BehaviourScorer(_WindowScorer[Window]):
    def __init__(
        self,
        info: ModelInfo,
        model: BehaviourModel,
        entity_field: str,
        seconds: float,
        max_bytes: int | None = DEFAULT_MAX_BYTES,
    ) -> None:
        self.info, self.model, self.entity_field = info, model, entity_field
        self.windows = behaviour_windows(entity_field, seconds, max_bytes, info.id)

    def _score(self, closed: list[Window]) -> list[Alert]:
        alerts = []
        for window in closed:
            verdict = self.model.score(window)
            if verdict.anomalous:
                details = {
                    "anomaly.score": round(verdict.score, 4),
                    "anomaly.threshold": round(self.model.threshold, 4),
                    "anomaly.features": {k: round(v, 4) for k, v in verdict.features.items()},
                    "anomaly.explanation": verdict.reasons,
                }
                alerts.append(
                    _anomaly_alert(
                        self.info,
                        self.entity_field,
                        window.entity,
                        window.start,
                        window.last_time,
                        window.agency,
                        details,
                    )
                )
        return alerts


class LogPatternScorer(_WindowScorer[Session]):
    def __init__(
        self,
        info: ModelInfo,
        vocabulary: TemplateVocabulary,
        transitions: TransitionModel,
        session_field: str,
        seconds: float,
        max_bytes: int | None = DEFAULT_MAX_BYTES,
    ) -> None:
        self.info, self.vocabulary, self.transitions = info, vocabulary, transitions
        self.session_field = session_field
        self.windows = session_windows(
            session_field, seconds, vocabulary.template_of, max_bytes, info.id
        )

    def _score(self, closed: list[Session]) -> list[Alert]:
        alerts = []
        templates = self.vocabulary.templates
        for session in closed:
            unseen = self.transitions.unseen_steps(session.templates)
            if len(unseen) < max(self.transitions.min_unseen_steps, 1):
                continue
            details = {
                "anomaly.unseen_steps": [
                    f"{templates.get(a, a)} -> {templates.get(b, b)}" for a, b in unseen[:10]
                ],
                "anomaly.session_events": len(session.templates),
                "anomaly.explanation": [
                    f"{len(unseen)} template transition(s) never seen in training"
                ],
            }
            alerts.append(
                _anomaly_alert(
                    self.info,
                    self.session_field,
                    session.key,
                    session.start,
                    session.last_time,
                    session.agency,
                    details,
                )
            )
        return alerts

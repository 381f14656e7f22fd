"""Fitting models from a stream of events (files today, any event iterator tomorrow)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from socpipe.core.event import Event
from socpipe.detectors.anomaly.artifact import save_artifact
from socpipe.detectors.anomaly.behaviour import FEATURES, BehaviourModel, Window
from socpipe.detectors.anomaly.scorers import Session, behaviour_windows, iso, session_windows
from socpipe.detectors.anomaly.sequence import (
    DEFAULT_MIN_UNSEEN_STEPS,
    DEFAULT_REACH,
    TransitionModel,
)
from socpipe.detectors.anomaly.templates import TemplateVocabulary
from socpipe.detectors.correlation import event_time


@dataclass
class TrainingSpan:
    """The event-time span and size of the training data, for the manifest."""

    events: int = 0
    first: float = float("inf")
    last: float = float("-inf")

    def count(self, event: Event) -> None:
        self.events += 1
        if (moment := event_time(event)) is not None:
            self.first, self.last = min(self.first, moment), max(self.last, moment)

    def manifest(self, windows: int, sources: list[str]) -> dict[str, Any]:
        if self.events == 0 or self.first == float("inf"):
            raise ValueError("no events with a timestamp to train on")
        return {
            "events": self.events,
            "windows": windows,
            "first_event": iso(self.first),
            "last_event": iso(self.last),
            "sources": sources,
        }


def train_behaviour(
    events: Iterable[Event],
    out: Path,
    name: str,
    entity_field: str,
    window_seconds: float,
    sources: list[str],
) -> dict[str, Any]:
    span = TrainingSpan()
    windows_of = behaviour_windows(entity_field, window_seconds)
    windows: list[Window] = []
    for event in events:
        span.count(event)
        windows.extend(windows_of.observe(event))
    windows.extend(windows_of.flush())
    model = BehaviourModel.fit(windows)
    manifest = {
        "kind": "behaviour",
        "name": name,
        "title": f"Unusual behaviour of {entity_field}",
        "description": f"Isolation Forest over {int(window_seconds)} s windows per {entity_field}",
        "entity_field": entity_field,
        "window_seconds": window_seconds,
        "features": list(FEATURES),
        "threshold": model.threshold,
        "training": span.manifest(len(windows), sources),
    }
    save_artifact(out, manifest, {"model": model})
    return manifest


def train_log_pattern(
    events: Iterable[Event],
    out: Path,
    name: str,
    session_field: str,
    window_seconds: float,
    sources: list[str],
    reach: int = DEFAULT_REACH,
    min_unseen_steps: int = DEFAULT_MIN_UNSEEN_STEPS,
) -> dict[str, Any]:
    """Two passes over the sessions: mine templates from every message, then learn the steps
    between the final templates (Drain's templates shift while it learns)."""
    span = TrainingSpan()
    vocabulary = TemplateVocabulary()
    sessions_of = session_windows(session_field, window_seconds, lambda message: message)
    sessions: list[Session] = []
    for event in events:
        span.count(event)
        sessions.extend(sessions_of.observe(event))
    sessions.extend(sessions_of.flush())
    for session in sessions:
        vocabulary.learn(session.templates)
    transitions = TransitionModel(reach, min_unseen_steps).fit(
        [vocabulary.template_of(message) for message in session.templates] for session in sessions
    )
    manifest = {
        "kind": "log_pattern",
        "name": name,
        "title": f"Unusual log sequence on {session_field}",
        "description": (
            f"Drain templates per {int(window_seconds)} s session of {session_field};"
            f" sessions with {min_unseen_steps} or more steps unseen within {reach} events in"
            " training are anomalous"
        ),
        "session_field": session_field,
        "window_seconds": window_seconds,
        "reach": reach,
        "min_unseen_steps": min_unseen_steps,
        "templates": len(vocabulary.templates),
        "training": span.manifest(len(sessions), sources),
    }
    save_artifact(out, manifest, {"vocabulary": vocabulary, "transitions": transitions})
    return manifest

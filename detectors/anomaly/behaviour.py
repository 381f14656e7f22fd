"""Behaviour of one entity (a user, a source address, a host, an agency) over a time window.

Each window of an entity becomes a feature vector; an Isolation Forest learns what windows
usually look like. A window is an anomaly when two things hold:

* the forest finds it rare (its score is below the 1st percentile of the training windows);
* some feature lies outside everything training saw, by at least one spread (interquartile
  range). Isolation Forest scores saturate: a window ten times beyond the training range
  scores about like the strangest training window, so the forest alone cannot separate "new"
  from "the usual odd hour". The envelope test can, and it keeps unchanged behaviour quiet.

The alert says why: the features furthest outside the training envelope.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sklearn.ensemble import IsolationForest

from socpipe.core.event import Event

FEATURES = (
    "events",
    "failure_ratio",
    "distinct_users",
    "distinct_hosts",
    "distinct_destinations",
    "distinct_urls",
    "http_error_ratio",
    "bytes",
    "new_hour_ratio",
    "new_user_agents",
)
#: Features counted on a log scale: a jump from 10 to 1,000 events matters, 1,000 to 1,010 not.
LOG_SCALED = frozenset(
    {
        "events",
        "distinct_users",
        "distinct_hosts",
        "distinct_destinations",
        "distinct_urls",
        "bytes",
    }
)
BYTE_FIELDS = ("http.response.body.bytes", "source.bytes", "destination.bytes")
#: Distinct values a window keeps per kind (users, hosts, ...): the distinct-count features
#: saturate there, far beyond anything a normal window holds, and a window of an entity that
#: sprays a million URLs stays small.
MAX_DISTINCT = 10_000
#: An empty window (the object, its five sets and its hours), and what a kept value costs
#: beyond the string itself (its set slot), measured with tracemalloc.
WINDOW_BYTES = 1_300
SET_SLOT_BYTES = 80
HOUR_BYTES = 100


@dataclass
class Window:
    """What one entity did in one window: the raw material of its features."""

    entity: str
    start: float
    events: int = 0
    failures: int = 0
    http_requests: int = 0
    http_errors: int = 0
    bytes: float = 0.0
    users: set[str] = field(default_factory=set)
    hosts: set[str] = field(default_factory=set)
    destinations: set[str] = field(default_factory=set)
    urls: set[str] = field(default_factory=set)
    #: Events per hour of the day (UTC).
    hours: dict[int, int] = field(default_factory=dict)
    user_agents: set[str] = field(default_factory=set)
    agency: str = "unknown"
    last_time: float = 0.0

    def add(self, event: Event, moment: float) -> int:
        """Count the event; returns by about how many bytes the window grew."""
        grown = 0
        self.events += 1
        self.last_time = max(self.last_time, moment)
        self.agency = str(event.get("organization.id", self.agency))
        if event.get("event.outcome") == "failure":
            self.failures += 1
        status = event.get("http.response.status_code")
        if isinstance(status, int):
            self.http_requests += 1
            self.http_errors += status >= 400
        for name in BYTE_FIELDS:
            value = event.get(name)
            if isinstance(value, int | float) and not isinstance(value, bool):
                self.bytes += value
        for name, bucket in (
            ("user.name", self.users),
            ("host.name", self.hosts),
            ("destination.ip", self.destinations),
            ("url.path", self.urls),
            ("user_agent.original", self.user_agents),
        ):
            if (value := event.get(name)) not in (None, "") and len(bucket) < MAX_DISTINCT:
                text = str(value)
                if text not in bucket:
                    bucket.add(text)
                    grown += sys.getsizeof(text) + SET_SLOT_BYTES
        hour = datetime.fromtimestamp(moment, UTC).hour
        if hour not in self.hours:
            grown += HOUR_BYTES
        self.hours[hour] = self.hours.get(hour, 0) + 1
        return grown


@dataclass
class Profile:
    """What training saw of each entity, for the novelty features (bounded per entity)."""

    hours: dict[str, set[int]] = field(default_factory=dict)
    user_agents: dict[str, set[str]] = field(default_factory=dict)
    all_hours: set[int] = field(default_factory=set)
    all_user_agents: set[str] = field(default_factory=set)

    MAX_AGENTS_PER_ENTITY = 64

    def learn(self, window: Window) -> None:
        self.hours.setdefault(window.entity, set()).update(window.hours)
        agents = self.user_agents.setdefault(window.entity, set())
        for agent in window.user_agents:
            if len(agents) < self.MAX_AGENTS_PER_ENTITY:
                agents.add(agent)
        self.all_hours.update(window.hours)
        self.all_user_agents.update(list(window.user_agents)[: self.MAX_AGENTS_PER_ENTITY])

    def features(self, window: Window) -> dict[str, float]:
        # An entity training never saw is compared with everybody's habits.
        hours = self.hours.get(window.entity, self.all_hours)
        agents = self.user_agents.get(window.entity, self.all_user_agents)
        new_hours = sum(count for hour, count in window.hours.items() if hour not in hours)
        return {
            "events": window.events,
            "failure_ratio": window.failures / window.events,
            "distinct_users": len(window.users),
            "distinct_hosts": len(window.hosts),
            "distinct_destinations": len(window.destinations),
            "distinct_urls": len(window.urls),
            "http_error_ratio": window.http_errors / window.http_requests
            if window.http_requests
            else 0.0,
            "bytes": window.bytes,
            "new_hour_ratio": new_hours / window.events,
            "new_user_agents": len(window.user_agents - agents),
        }


def vector(features: dict[str, float]) -> list[float]:
    return [
        math.log1p(features[name]) if name in LOG_SCALED else features[name] for name in FEATURES
    ]


@dataclass
class BehaviourModel:
    """Isolation Forest over window features, with what it needs to explain a score."""

    forest: IsolationForest
    profile: Profile
    threshold: float
    medians: list[float]
    spreads: list[float]
    lows: list[float]
    highs: list[float]

    @classmethod
    def fit(cls, windows: Iterable[Window], quantile: float = 1.0) -> BehaviourModel:
        windows = list(windows)
        if len(windows) < 20:
            raise ValueError(
                f"only {len(windows)} entity windows to learn from; need at least 20"
                " (more data, a shorter --window, or a busier --entity field)"
            )
        profile = Profile()
        for window in windows:
            profile.learn(window)
        matrix = np.array([vector(profile.features(window)) for window in windows])
        forest = IsolationForest(n_estimators=200, random_state=0).fit(matrix)
        scores = forest.score_samples(matrix)
        low, median, high = np.percentile(matrix, [25, 50, 75], axis=0)
        spreads = np.maximum(high - low, 0.1 * np.abs(median) + 0.05)
        return cls(
            forest=forest,
            profile=profile,
            threshold=float(np.percentile(scores, quantile)),
            medians=median.tolist(),
            spreads=spreads.tolist(),
            lows=matrix.min(axis=0).tolist(),
            highs=matrix.max(axis=0).tolist(),
        )

    def score(self, window: Window) -> Verdict:
        features = self.profile.features(window)
        row = vector(features)
        score = float(self.forest.score_samples(np.array([row]))[0])
        outside = []
        for value, low, high, spread, name in zip(
            row, self.lows, self.highs, self.spreads, FEATURES, strict=True
        ):
            beyond = max(value - high, low - value) / spread
            if beyond >= 1:
                outside.append((beyond, name, "above" if value > high else "below"))
        outside.sort(reverse=True)
        reasons = [
            f"{name}={features[name]:g} ({direction} anything seen in training,"
            f" by {beyond:.1f} spreads)"
            for beyond, name, direction in outside[:3]
        ]
        return Verdict(score < self.threshold and bool(outside), score, features, reasons)


@dataclass(frozen=True)
class Verdict:
    anomalous: bool
    score: float
    features: dict[str, float]
    reasons: list[str]


def entity_value(event: Event, entity_field: str) -> str | None:
    value: Any = event.get(entity_field)
    return None if value in (None, "") else str(value)

"""Everything that turns events into alerts, in one place for `socpipe scan`, the daemon's
detect stage and the rule tests: Sigma rules, then correlations over their matches, then
anomaly models."""

from __future__ import annotations

from collections.abc import Sequence

from socpipe.core.event import Event
from socpipe.detectors.alert import Alert
from socpipe.detectors.correlation import CorrelationEngine, DeferredIds
from socpipe.detectors.engine import SigmaEngine
from socpipe.detectors.rules import CompiledRule, RuleLoadReport
from socpipe.detectors.watcher import EventWatcher


class Detector:
    """Sigma matches, correlation alerts and anomaly alerts for a stream of events.

    Output follows the Sigma ``generate`` flag: a single-event rule referenced by a correlation
    raises alerts of its own only if a referencing correlation says ``generate: true``.
    Correlation rules always raise their own alerts, even when another correlation builds on
    them (brute force, then brute force followed by a login): a correlation is written to be
    read by an analyst.
    """

    def __init__(
        self,
        report: RuleLoadReport,
        correlations: CorrelationEngine | None = None,
        watchers: Sequence[EventWatcher] = (),
        identify: DeferredIds | None = None,
    ) -> None:
        """``identify`` gives ids to events that arrive without one (a scan's lines), when
        they raise an alert or meet a watcher; the correlation engine made here asks it for an
        id only when an alert lists the event (see ``DeferredIds``)."""
        self.engine = SigmaEngine(report.rules)
        self.correlations = correlations or CorrelationEngine(
            report.correlations, deferred_ids=identify
        )
        self.watchers = list(watchers)
        self._identify = identify
        generating = {
            rule_id
            for correlation in report.correlations
            if correlation.generate
            for rule_id in correlation.rule_ids
        }
        referenced = self.correlations.referenced_rule_ids
        self._silent = {
            rule.id for rule in report.rules if rule.id in referenced and rule.id not in generating
        }
        self.correlations.alerting_rule_ids = frozenset(
            rule.id
            for rule in report.rules
            if rule.id in referenced and rule.id not in self._silent
        )
        #: Re-reading history only feeds the windows: the rules correlations count are enough.
        self._replay_engine = SigmaEngine([rule for rule in report.rules if rule.id in referenced])

    def process(self, event: Event) -> list[Alert]:
        matches = self.engine.match(event)
        if self._identify is not None and (
            self.watchers or any(rule.id not in self._silent for rule in matches)
        ):
            self._identify(event)
        alerts = self.process_matches(event, matches)
        for watcher in self.watchers:
            alerts.extend(watcher.observe(event))
        return alerts

    @property
    def state_horizon_secs(self) -> float:
        """How far back events shape the correlation windows (anomaly-model windows are not
        counted: an hour of history would be a long re-read; the daemon's setting covers it)."""
        return self.correlations.horizon_secs

    def replay(self, event: Event) -> None:
        """Feed an event handled before a restart to the windows, raising nothing: its alerts
        went out the first time. Rebuilds the state a new process would otherwise lack."""
        for rule in self._replay_engine.match(event):
            self.correlations.observe(rule.id, event)
        for watcher in self.watchers:
            watcher.observe(event)

    def process_matches(self, event: Event, rules: Sequence[CompiledRule]) -> list[Alert]:
        """Alerts and correlation input for an event whose matching rules are known already
        (``socpipe scan --jobs`` matches in worker processes and correlates here)."""
        alerts: list[Alert] = []
        for rule in rules:
            if rule.id not in self._silent:
                alerts.append(Alert.from_match(rule, event))
            alerts.extend(self.correlations.observe(rule.id, event))
        return alerts

    def flush(self) -> list[Alert]:
        """End of input: close every open window and judge it."""
        alerts = self.correlations.flush()
        for watcher in self.watchers:
            alerts.extend(watcher.flush())
        return alerts

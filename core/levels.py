"""Sigma's alert levels and their ECS severities: how every layer (rules, forwarding policy,
STIX and CEF encoders, the console) ranks an alert, defined once."""

from __future__ import annotations

from typing import Final

#: Sigma levels, least severe first.
LEVELS: Final = ("informational", "low", "medium", "high", "critical")
#: ECS event.severity per Sigma level, so alerts sort the same way in every tool.
SEVERITY: Final = {level: rank for rank, level in enumerate(LEVELS, 1)}

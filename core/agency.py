"""Agency identity on Kafka: one events topic per agency.

Kafka's ACLs apply to topic names, never to what a record says. So each agency's collector
writes its own topic (``soc.events.<agency>``), its principal may write that topic alone,
and the stages read the agency from the topic name, which the broker vouches for, instead of
from ``organization.id`` in the payload, which any writer could set. Agency ids become topic
names, so they are checked here: lower-case letters, digits and hyphens (no ``.`` or ``_``,
which Kafka treats alike in metric names and which would make one agency's topic look like
another's prefix).
"""

from __future__ import annotations

import re
from typing import Final

#: An agency id: what ``--agency`` takes and what follows the prefix in a topic name.
AGENCY_ID_PATTERN: Final = r"[a-z0-9][a-z0-9-]{0,62}"
_AGENCY_ID: Final = re.compile(AGENCY_ID_PATTERN)
#: A Kafka topic name (Kafka's own rule).
_TOPIC: Final = re.compile(r"[A-Za-z0-9._-]{1,249}")


def agency_problem(agency: str) -> str | None:
    """Why ``agency`` cannot be an agency id, or None."""
    if _AGENCY_ID.fullmatch(agency):
        return None
    return (
        f"agency id {agency[:80]!r} is not 1-63 lower-case letters, digits and hyphens"
        " starting with a letter or digit (it becomes part of a Kafka topic name)"
    )


def topic_problem(topic: str) -> str | None:
    """Why ``topic`` cannot be a Kafka topic name, or None."""
    if _TOPIC.fullmatch(topic) and topic not in (".", ".."):
        return None
    return f"{topic[:80]!r} is not a Kafka topic name (1-249 of A-Z a-z 0-9 . _ -)"


def agency_topic(prefix: str, agency: str) -> str:
    """The events topic of ``agency``; raises ``ValueError`` for an invalid agency id."""
    if problem := agency_problem(agency):
        raise ValueError(problem)
    return f"{prefix}.{agency}"


def topic_agency(prefix: str, topic: str) -> str | None:
    """The agency whose topic ``topic`` is, or None when it is not an agency topic."""
    start = len(prefix) + 1
    if not topic.startswith(prefix) or topic[start - 1 : start] != ".":
        return None
    agency = topic[start:]
    return agency if _AGENCY_ID.fullmatch(agency) else None


def agency_topics_pattern(prefix: str) -> str:
    """A regex matching exactly the agency topics under ``prefix`` (for pattern subscriptions)."""
    return rf"{re.escape(prefix)}\.{AGENCY_ID_PATTERN}"

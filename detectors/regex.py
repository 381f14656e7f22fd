"""Rule regexes on RE2 (linear time) where the pattern allows, Python ``re`` otherwise.

A rule author's regex runs against attacker-controlled text; backtracking engines can be made
to spin for minutes on one line. RE2 cannot, so it is used whenever the pattern is within its
syntax (no backreferences or lookaround); the fallback is logged once per pattern.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

import re2

log = logging.getLogger(__name__)

SearchFunction = Callable[[str], object]
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.max_mem = 64 << 20
# A pattern RE2 rejects is expected (it falls back); RE2 must not print it to stderr.
_RE2_OPTIONS.log_errors = False


def compile_search(pattern: str, flags: str, source: str) -> tuple[SearchFunction, str]:
    """A ``search`` function for the pattern, and the engine name (``re2`` or ``re``).

    ``flags`` holds the Sigma regex flags as letters (``i``, ``m``, ``s``).
    """
    prefix = f"(?{''.join(sorted(flags))})" if flags else ""
    try:
        return re2.compile(prefix + pattern, _RE2_OPTIONS).search, "re2"
    except re2.error:
        pass
    python_flags = 0
    for letter, flag in (("i", re.IGNORECASE), ("m", re.MULTILINE), ("s", re.DOTALL)):
        if letter in flags:
            python_flags |= flag
    compiled = re.compile(pattern, python_flags)
    log.warning("regex not RE2-compatible, using Python re rule=%s pattern=%r", source, pattern)
    return compiled.search, "re"

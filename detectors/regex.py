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

#: Whether the pattern occurs anywhere in the text.
SearchFunction = Callable[[str], bool]
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.max_mem = 64 << 20
# A pattern RE2 rejects is expected (it falls back); RE2 must not print it to stderr.
_RE2_OPTIONS.log_errors = False


def _with_flags(pattern: str, flags: str) -> str:
    return f"(?{''.join(sorted(flags))}){pattern}" if flags else pattern


def _one_pattern_set(pattern: str) -> re2.Set | None:
    pattern_set = re2.Set.SearchSet(_RE2_OPTIONS)
    try:
        pattern_set.Add(pattern)
        pattern_set.Compile()
    except re2.error:
        return None
    return pattern_set


def re2_pattern(pattern: str, flags: str) -> str | None:
    """The pattern with its flags inlined, if RE2 can run it; None otherwise."""
    flagged = _with_flags(pattern, flags)
    return flagged if _one_pattern_set(flagged) is not None else None


def compile_search(pattern: str, flags: str, source: str) -> SearchFunction:
    """Whether the pattern occurs in a text: RE2 when it can run the pattern, else Python re.

    ``flags`` holds the Sigma regex flags as letters (``i``, ``m``, ``s``).
    """
    # A one-pattern RE2 set answers "does it occur?" without computing match offsets, which is
    # all a rule needs and a fifth cheaper than re2's search() through the Python wrapper.
    pattern_set = _one_pattern_set(_with_flags(pattern, flags))
    if pattern_set is not None:
        set_match = pattern_set.Match
        return lambda text: set_match(text) is not None
    python_flags = 0
    for letter, flag in (("i", re.IGNORECASE), ("m", re.MULTILINE), ("s", re.DOTALL)):
        if letter in flags:
            python_flags |= flag
    search = re.compile(pattern, python_flags).search
    log.warning("regex not RE2-compatible, using Python re rule=%s pattern=%r", source, pattern)
    return lambda text: search(text) is not None

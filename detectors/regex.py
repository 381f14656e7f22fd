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


def compile_regex(pattern: str, flags: str, source: str) -> tuple[SearchFunction, str | None]:
    """Whether the pattern occurs in a text: RE2 when it can run the pattern, else Python re;
    and the pattern with its flags inlined when RE2 runs it (None for Python re), for the
    engine's prefilter.

    ``flags`` holds the Sigma regex flags as letters (``i``, ``m``, ``s``).
    """
    flagged = f"(?{''.join(sorted(flags))}){pattern}" if flags else pattern
    # A one-pattern RE2 set answers "does it occur?" without computing match offsets, which is
    # all a rule needs and a fifth cheaper than re2's search() through the Python wrapper.
    pattern_set = re2.Set.SearchSet(_RE2_OPTIONS)
    try:
        pattern_set.Add(flagged)
        pattern_set.Compile()
    except re2.error:
        pass
    else:
        set_match = pattern_set.Match
        return (lambda text: set_match(text) is not None), flagged
    python_flags = 0
    for letter, flag in (("i", re.IGNORECASE), ("m", re.MULTILINE), ("s", re.DOTALL)):
        if letter in flags:
            python_flags |= flag
    search = re.compile(pattern, python_flags).search
    log.warning("regex not RE2-compatible, using Python re rule=%s pattern=%r", source, pattern)
    return (lambda text: search(text) is not None), None

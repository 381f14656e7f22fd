"""Rule regexes on RE2 (linear time) where the pattern allows, Python ``re`` otherwise.

A rule author's regex runs against attacker-controlled text; backtracking engines can be made
to spin for minutes on one line. RE2 cannot, so it is used whenever the pattern is within its
syntax (no backreferences or lookaround); the fallback is logged once per pattern.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable

import re2

log = logging.getLogger(__name__)

#: Whether the pattern occurs anywhere in the text.
SearchFunction = Callable[[str], bool]
#: The positions (in the order added) of the set's patterns that occur in the text.
SetSearch = Callable[[str], list[int]]
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.max_mem = 64 << 20
# A pattern RE2 rejects is expected (it falls back); RE2 must not print it to stderr.
_RE2_OPTIONS.log_errors = False


def compile_set(patterns: Iterable[str], options: re2.Options) -> SetSearch:
    """An RE2 set of ``patterns``, searched anywhere in a text; raises ``re2.error`` for a
    pattern RE2 cannot run.

    Texts are encoded here, with ``surrogatepass``: a lone surrogate (from a JSON escape) is
    valid in a Python string but not in UTF-8, and the wrapper's strict encoding raised on it,
    stopping the scan. The set is searched through the extension object the wrapper holds:
    the wrapper's ``Match`` is interpreted Python around it, and cost as much as the search on
    web logs, where every request is scanned this way.
    """
    wrapper = re2.Set.SearchSet(options)
    for pattern in patterns:
        wrapper.Add(pattern)
    wrapper.Compile()
    search = wrapper._set.Match

    def search_text(text: str) -> list[int]:
        return search(text.encode("utf-8", "surrogatepass"))  # type: ignore[no-any-return]

    return search_text


def compile_regex(pattern: str, flags: str, source: str) -> tuple[SearchFunction, str | None]:
    """Whether the pattern occurs in a text: RE2 when it can run the pattern, else Python re;
    and the pattern with its flags inlined when RE2 runs it (None for Python re), for the
    engine's prefilter.

    ``flags`` holds the Sigma regex flags as letters (``i``, ``m``, ``s``).
    """
    flagged = f"(?{''.join(sorted(flags))}){pattern}" if flags else pattern
    # A one-pattern RE2 set answers "does it occur?" without computing match offsets, which is
    # all a rule needs and a fifth cheaper than re2's search() through the Python wrapper.
    try:
        search_set = compile_set([flagged], _RE2_OPTIONS)
    except re2.error:
        pass
    else:
        return (lambda text: bool(search_set(text))), flagged
    python_flags = 0
    for letter, flag in (("i", re.IGNORECASE), ("m", re.MULTILINE), ("s", re.DOTALL)):
        if letter in flags:
            python_flags |= flag
    search = re.compile(pattern, python_flags).search
    log.warning("regex not RE2-compatible, using Python re rule=%s pattern=%r", source, pattern)
    return (lambda text: search(text) is not None), None

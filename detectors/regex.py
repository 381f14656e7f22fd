"""Rule regexes on RE2 only: linear time whatever the text.

A rule author's regex runs against attacker-controlled text; a backtracking engine can be made
to spin for minutes on one line, and a detect stage stuck on one line stops detection for
every agency. So a pattern RE2 cannot run (lookaround, backreferences, or one over RE2's
memory budget) is refused when the rule is loaded: ``rules check`` reports it as an error
with the rule's file and the ``detection`` line, and the daemon and ``scan`` skip the rule
(said in their logs). None of the SigmaHQ rules needs more than RE2 (docs/security.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import re2

from socpipe.detectors.errors import RuleError

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


def compile_regex(pattern: str, flags: str, source: str) -> tuple[SearchFunction, str]:
    """Whether the pattern occurs in a text, on RE2; and the pattern with its flags inlined,
    for the engine's prefilter. A pattern RE2 cannot run is a ``RuleError`` on the rule's
    ``detection`` key.

    ``flags`` holds the Sigma regex flags as letters (``i``, ``m``, ``s``).
    """
    flagged = f"(?{''.join(sorted(flags))}){pattern}" if flags else pattern
    # A one-pattern RE2 set answers "does it occur?" without computing match offsets, which is
    # all a rule needs and a fifth cheaper than re2's search() through the Python wrapper.
    try:
        search_set = compile_set([flagged], _RE2_OPTIONS)
    except re2.error:
        raise RuleError(
            source,
            f"detection: regex {_show(pattern)} cannot run on RE2 ({_re2_reason(flagged)});"
            " socpipe runs rule"
            " regexes in linear time only, so lookaround and backreferences are refused:"
            " rewrite the pattern without them (for example as a second selection with 'not')",
            key="detection",
        ) from None
    return (lambda text: bool(search_set(text))), flagged


def _re2_reason(pattern: str) -> str:
    """RE2's own words for why it refuses ``pattern`` (a set only says that it failed)."""
    try:
        re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as error:
        reason = error.args[0] if error.args else error
        return reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
    return "refused by RE2"


def _show(pattern: str) -> str:
    text = repr(pattern)
    return text if len(text) <= 80 else text[:77] + "..."

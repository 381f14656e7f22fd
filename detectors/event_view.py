"""A per-event view that turns field values into strings once, however many rules ask.

Sigma matching is case-insensitive by default, so most comparisons need the lower-cased text
of a field; computing it once per event instead of once per rule is most of the speed of the
engine on events that meet thousands of rules.
"""

from __future__ import annotations

from typing import Any, Final

FieldText = str | list[str] | None
# Cache misses are the common case for rules on absent fields; a sentinel is cheaper than
# catching KeyError.
_UNSET: Final = object()


def as_text(value: Any) -> FieldText:
    """The string form Sigma compares against: bools as ``true``/``false``, lists element-wise."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return [text for item in value if isinstance(text := as_text(item), str)]
    return str(value)


class EventView:
    """Cached text and lower-cased text of an event's fields."""

    __slots__ = ("_lower", "_text", "event")

    def __init__(self, event: dict[str, Any]) -> None:
        self.event = event
        self._text: dict[str, FieldText] = {}
        self._lower: dict[str, FieldText] = {}

    def text(self, field: str) -> FieldText:
        value = self.event.get(field)
        # Most values are strings already: they are their own text, nothing to cache.
        if type(value) is str or value is None:
            return value
        text = self._text.get(field, _UNSET)
        if text is _UNSET:
            text = self._text[field] = as_text(value)
        return text  # type: ignore[return-value]

    def lower(self, field: str) -> FieldText:
        lowered = self._lower.get(field, _UNSET)
        if lowered is _UNSET:
            value = self.event.get(field)
            if type(value) is str:
                lowered = value.lower()
            else:
                text = self.text(field)
                if text is None:
                    lowered = None
                elif type(text) is str:
                    lowered = text.lower()  # type: ignore[union-attr]
                else:
                    lowered = [item.lower() for item in text]  # type: ignore[union-attr]
            self._lower[field] = lowered  # type: ignore[assignment]
        return lowered  # type: ignore[return-value]

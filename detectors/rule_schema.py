"""The shape of a rule document, checked before pySigma sees it, and the YAML line of a key.

pySigma assumes the types it expects: ``id: 1`` reaches it as a number and fails deep inside
with ``'int' object has no attribute 'replace'``. Checking the top-level types first turns
that into ``id: must be text (a UUID), not 1`` with the line, which is what a rule author
needs. Lines are looked up only when there is an error to report (composing the YAML again
costs as much as loading it).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import yaml

#: Top-level keys and the type their value must have.
TEXT_KEYS = ("title", "id", "name", "status", "description", "author", "level", "license")
#: Dates may be written unquoted: YAML reads ``2026-11-29`` as a date, which pySigma takes.
DATE_KEYS = ("date", "modified")
LIST_KEYS = ("references", "tags", "falsepositives", "fields", "related")
MAPPING_KEYS = ("logsource", "detection", "correlation")
#: pySigma error classes that are about one key: the key whose line locates them.
ERROR_KEYS = {
    "SigmaIdentifierError": "id",
    "SigmaTitleError": "title",
    "SigmaLevelError": "level",
    "SigmaStatusError": "status",
    "SigmaDateError": "date",
    "SigmaModifiedError": "modified",
    "SigmaLogsourceError": "logsource",
    "SigmaDetectionError": "detection",
    "SigmaConditionError": "detection",
    "SigmaModifierError": "detection",
    "SigmaValueError": "detection",
    "SigmaTagError": "tags",
    "SigmaReferencesError": "references",
    "SigmaRelatedError": "related",
    "SigmaFalsePositivesError": "falsepositives",
    "SigmaFieldsError": "fields",
    "SigmaAuthorError": "author",
    "SigmaDescriptionError": "description",
    "SigmaCorrelationRuleError": "correlation",
    "SigmaCorrelationTypeError": "correlation",
    "SigmaTimespanError": "correlation",
}


def shape_problem(document: dict[Any, Any]) -> tuple[str, str] | None:
    """The first top-level key whose value has the wrong type, and why; None if none."""
    for key in TEXT_KEYS:
        value = document.get(key)
        if value is not None and not isinstance(value, str):
            what = "text (a UUID)" if key == "id" else "text"
            return key, f"must be {what}, not {_show(value)}"
    for key in DATE_KEYS:
        value = document.get(key)
        if value is not None and not isinstance(value, str | date):
            return key, f"must be a date (YYYY-MM-DD), not {_show(value)}"
    for key in LIST_KEYS:
        value = document.get(key)
        if value is not None and not isinstance(value, list):
            return key, f"must be a list, not {_show(value)}"
    for key in MAPPING_KEYS:
        value = document.get(key)
        if value is not None and not isinstance(value, dict):
            return key, f"must be a mapping, not {_show(value)}"
    return None


def key_line(text: str, key: str, document_index: int = 0) -> int | None:
    """The 1-based line of a top-level ``key`` in the ``document_index``-th YAML document."""
    try:
        nodes = list(yaml.compose_all(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
    except yaml.YAMLError:
        return None
    documents = [node for node in nodes if node is not None]
    if document_index >= len(documents):
        return None
    root = documents[document_index]
    if not isinstance(root, yaml.MappingNode):
        return None
    for name, _value in root.value:
        if isinstance(name, yaml.ScalarNode) and name.value == key:
            return int(name.start_mark.line) + 1
    return None


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."

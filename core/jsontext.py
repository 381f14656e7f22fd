"""Strict JSON for everything socpipe writes: what it produces is JSON any reader accepts.

Log content reaches documents unchecked: a JSON escape ``\\ud800`` decodes to a lone surrogate
(no UTF-8 encoding exists for it), and a computed score may be NaN (``NaN`` is not JSON). The
fast path is orjson (which writes NaN as null and refuses surrogates); what it refuses is
written by the standard library with non-finite numbers as null and every non-ASCII character
escaped, so the text is valid UTF-8 and round-trips the surrogate as its ``\\uXXXX`` escape.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson


def dumps(document: Any) -> bytes:
    """``document`` as one line of strict JSON, UTF-8 encoded."""
    try:
        return orjson.dumps(document)
    except TypeError:
        return json.dumps(_finite(document), ensure_ascii=True, allow_nan=False).encode("ascii")


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities replaced by None, at any depth."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value

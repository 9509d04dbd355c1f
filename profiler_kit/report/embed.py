"""The report's embedded copy of its data: script-safe JSON within a size budget."""

from __future__ import annotations

import json
import math
from typing import Any

import msgspec

# Characters that could end a <script> element or an HTML comment early, or a JS string
# (U+2028/2029 are line terminators in older JS engines): written as JSON \u escapes, which
# JSON.parse and JS literals read back as the same characters.
_SCRIPT_UNSAFE = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def json_for_script(value: Any) -> str:
    """JSON that is safe to place inside <script>...</script>, whatever strings it holds."""
    text = json.dumps(_finite(value), ensure_ascii=False, allow_nan=False,
                      separators=(",", ":"), default=_json_default)
    for char, escaped in _SCRIPT_UNSAFE.items():
        text = text.replace(char, escaped)
    return text


def _finite(value: Any) -> Any:
    """NaN and infinity are not JSON: a missing figure becomes null, which the page shows as –."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _json_default(value: Any) -> Any:
    # records (msgspec Structs) and numpy scalars; plain values serialise as they are.
    if isinstance(value, msgspec.Struct):
        return msgspec.to_builtins(value)
    for attr in ("item", "tolist"):
        if hasattr(value, attr):
            return getattr(value, attr)()
    raise TypeError(f"cannot embed {type(value).__name__} in the report")



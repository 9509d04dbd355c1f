"""The report's embedded copy of its data: script-safe JSON within a size budget."""

from __future__ import annotations

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
    """JSON that is safe to place inside <script>...</script>, whatever strings it holds.

    msgspec writes it (a run report's copy is megabytes: the json module, with a pass to turn
    NaN into null first, took 0.04 s a copy, msgspec 2 ms). NaN and infinity are not JSON:
    msgspec writes them as null, which the page shows as –. Floats are the shortest text that
    reads back as the same number, as json writes them, though not always spelt alike
    (0.00001 for 1e-05)."""
    text = msgspec.json.encode(value, enc_hook=_enc_hook).decode("utf-8")
    for char, escaped in _SCRIPT_UNSAFE.items():
        if char in text:
            text = text.replace(char, escaped)
    return text


def _enc_hook(value: Any) -> Any:
    # numpy scalars and arrays; records (msgspec Structs) and plain values encode as they are.
    for attr in ("item", "tolist"):
        if hasattr(value, attr):
            return getattr(value, attr)()
    raise TypeError(f"cannot embed {type(value).__name__} in the report")

"""Build a large Kineto trace by repeating the profiler steps of a real one (not committed).

    python benchmarks/make_big_trace.py SRC.json.gz OUT.json --size-gb 1.0

Each copy of the source's events is shifted in time by the source's span (plus a 1 ms gap), and
its ids that must stay unique (``correlation``, ``External id``, ``ProfilerStep#N`` numbers,
flow ids) are offset, so the result reads as one long capture of many steps: same event mix,
same shapes, same nesting. Written as plain JSON (gzip would hide the size the reader faces).
"""

from __future__ import annotations

import argparse
import gzip
import json
import re

_STEP = re.compile(r"^ProfilerStep#(\d+)$")
_ID_KEYS = ("correlation", "External id", "external id")


def _load(path: str) -> dict:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        return json.load(f)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("src")
    p.add_argument("out")
    p.add_argument("--size-gb", type=float, default=1.0)
    args = p.parse_args()
    doc = _load(args.src)
    events = doc.pop("traceEvents")
    timed = [e for e in events if isinstance(e.get("ts"), (int, float))]
    t0 = min(e["ts"] for e in timed)
    span = max(e["ts"] + e.get("dur", 0) for e in timed) - t0 + 1000.0
    max_id = max((e.get("args", {}).get(k, 0) for e in events for k in _ID_KEYS
                  if isinstance(e.get("args", {}).get(k, 0), int)), default=0) + 1
    steps = [int(m.group(1)) for e in events if (m := _STEP.match(str(e.get("name", ""))))]
    step_span = (max(steps) - min(steps) + 1) if steps else 0
    one = len(json.dumps(events, separators=(",", ":")))
    copies = max(1, round(args.size_gb * 1e9 / one))
    head = json.dumps(doc, separators=(",", ":"))[:-1]
    with open(args.out, "w") as f:
        f.write(head + (',' if len(head) > 1 else '') + '"traceEvents":[')
        first = True
        for c in range(copies):
            for e in events:
                e2 = dict(e)
                if isinstance(e2.get("ts"), (int, float)):
                    e2["ts"] = e["ts"] + c * span
                a = e.get("args")
                if isinstance(a, dict):
                    a2 = dict(a)
                    for k in _ID_KEYS:
                        if isinstance(a2.get(k), int) and a2[k] >= 0:
                            a2[k] += c * max_id
                    e2["args"] = a2
                if isinstance(e2.get("id"), int):
                    e2["id"] += c * max_id
                m = _STEP.match(str(e.get("name", "")))
                if m:
                    e2["name"] = f"ProfilerStep#{int(m.group(1)) + c * step_span}"
                f.write(("" if first else ",") + json.dumps(e2, separators=(",", ":")))
                first = False
        f.write("]}")
    print(f"{args.out}: {copies} copies of {len(events)} events")


if __name__ == "__main__":
    main()

"""Build the bad-input corpus (tests/data/bad/) from a committed trace.

    python scripts/make_bad_corpus.py            # rewrites tests/data/bad/

Each file is a damaged, hostile or unusual variant of the first events of
tests/data/sd/trace_vanilla.json.gz (a real SD 1.5 UNet trace), named ``<expect>__<case>``:
``ok`` the analyzer must exit 0 with a sane analysis.json (the damage dropped or read as unknown,
with a warning), ``bad`` it must exit 2 with one line. tests/test_bad_inputs.py runs every file.
Named pipes and folders cannot be committed: the test makes those itself.
"""

from __future__ import annotations

import copy
import gzip
import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "tests/data/sd/trace_vanilla.json.gz"
OUT = ROOT / "tests/data/bad"
KEEP_PER_KIND = 80         # kernels, ops, runtime calls, memory events...: small files, every kind


def _base() -> dict:
    with gzip.open(SOURCE, "rt") as f:
        trace = json.load(f)
    events = trace["traceEvents"]
    # keep the first events of each kind (category, or name of instant events), in file order
    seen: dict = {}
    kept = []
    for e in events:
        kind = (e.get("ph"), e.get("cat") or e.get("name"))
        if seen.get(kind, 0) < KEEP_PER_KIND:
            seen[kind] = seen.get(kind, 0) + 1
            kept.append(e)
    return {"schemaVersion": trace.get("schemaVersion"), "deviceProperties": trace.get("deviceProperties", []),
            "traceEvents": kept}


def _with_kernel(base: dict, change) -> dict:
    """base with its first kernel changed in place by change(event)."""
    t = copy.deepcopy(base)
    k = next(e for e in t["traceEvents"] if e.get("cat") == "kernel")
    change(k)
    return t


def _set_args(**kw):
    return lambda e: e.setdefault("args", {}).update(kw)


def cases(base: dict) -> dict[str, bytes]:
    j = lambda obj: json.dumps(obj).encode()          # noqa: E731
    text = j(base)
    mem = next((e for e in base["traceEvents"] if e.get("name") == "[memory]"), None)

    def memory(**kw):
        t = copy.deepcopy(base)
        t["traceEvents"].append({**(mem or {"ph": "i", "name": "[memory]", "ts": base["traceEvents"][0]["ts"]}),
                                 "args": {"Bytes": 512, "Total Allocated": 512, "Total Reserved": 2048,
                                          "Addr": 1, "Device Id": 0, **kw}})
        return j(t)

    out = {
        # values out of range: dropped or read as unknown, with a counted warning
        "ok__negative_duration.json": j(_with_kernel(base, lambda e: e.update(dur=-5e6))),
        "ok__duration_of_years.json": j(_with_kernel(base, lambda e: e.update(dur=3e15))),
        "ok__ts_zero_stretches_window.json": j(_with_kernel(base, lambda e: e.update(ts=0))),
        "ok__ts_huge.json": j(_with_kernel(base, lambda e: e.update(ts=1e300))),
        "ok__ts_overflows_float.json": j(_with_kernel(base, lambda e: e.update(ts=float("inf")))).replace(b"Infinity", b"1e400"),
        "ok__negative_ts.json": j(_with_kernel(base, lambda e: e.update(ts=-1e9))),
        "ok__correlation_2_64.json": j(_with_kernel(base, _set_args(correlation=2**64))),
        "ok__correlation_2_63.json": j(_with_kernel(base, _set_args(correlation=2**63))),
        "ok__external_id_huge.json": j(_with_kernel(base, _set_args(**{"External id": 10**30}))),
        "ok__stream_huge.json": j(_with_kernel(base, _set_args(stream=2**70))),
        "ok__stream_tid_unicode_digit.json": j(_with_kernel(base, lambda e: (e["args"].pop("stream", None),
                                                                           e.update(tid="stream ²")))),
        "ok__negative_ids.json": j(_with_kernel(base, _set_args(correlation=-7, stream=-1))),
        "ok__float_and_bool_ids.json": j(_with_kernel(base, _set_args(correlation=1.5, device=True))),
        "ok__grid_past_int32.json": j(_with_kernel(base, _set_args(grid=[2**40, 1, 1]))),
        "ok__block_negative.json": j(_with_kernel(base, _set_args(block=[-1, 1, 1]))),
        "ok__grid_five_dims.json": j(_with_kernel(base, _set_args(grid=[1, 2, 3, 4, 5]))),
        "ok__grid_malformed_strings.json": j(_with_kernel(base, _set_args(grid=["a", "b"]))),
        "ok__grid_nested.json": j(_with_kernel(base, _set_args(grid=[[1], [2]]))),
        "ok__grid_string.json": j(_with_kernel(base, _set_args(grid="grid(100,)"))),
        "ok__memory_negative_total.json": memory(**{"Total Allocated": -10**18}),
        "ok__memory_huge.json": memory(**{"Total Allocated": 2**70, "Bytes": 2**70}),
        "ok__memory_addr_huge.json": memory(Addr=2**80),
        "ok__args_deeply_nested.json": j(_with_kernel(base, _set_args(deep=json.loads("[" * 500 + "]" * 500)))),
        "ok__name_with_boundary_text.json": j(_with_kernel(base, lambda e: e.update(name='a},{"ph":"X"},{b'))),
        "ok__unicode_and_control_names.json": j(_with_kernel(base, lambda e: e.update(name="注意\u0000<script>"))),
        "ok__leading_whitespace_5kb.json": b" " * 5000 + text,
        "ok__bare_event_array.json": j(base["traceEvents"]),
        "ok__some_events_of_wrong_types.json": j({**base, "traceEvents": base["traceEvents"] + [
            {"ph": 1, "cat": [], "ts": "x"}, 5, "text", None]}),
        "ok__device_properties_odd.json": j({**base, "deviceProperties": [{"id": [1]}, {"name": 5}]}),
        "ok__gzip.json.gz": gzip.compress(text),
        "ok__gzip_two_members.json.gz": gzip.compress(text[:1000]) + gzip.compress(text[1000:]),
        # not a usable trace: exit 2 with one line
        "bad__empty.json": b"",
        "bad__whitespace_only.json": b" \n\t" * 3000,
        "bad__ints.json": b"[1,2,3]",
        "bad__events_of_wrong_types.json": j({"traceEvents": [{"ph": 1, "cat": 2, "ts": "a"}, [1], None]}),
        "bad__only_metadata.json": j({"traceEvents": [e for e in base["traceEvents"] if e.get("ph") == "M"]
                                                   or [{"ph": "M", "name": "process_name", "pid": 1}]}),
        "bad__all_durations_negative.json": j({"traceEvents": [dict(e, dur=-1) for e in base["traceEvents"]
                                                               if e.get("ph") == "X"]}),
        "bad__no_trace_events_key.json": b'{"foo": 1}',
        "bad__trace_events_not_array.json": b'{"traceEvents": 5}',
        "bad__trace_events_empty.json": b'{"traceEvents": []}',
        "bad__json_null.json": b"null",
        "bad__json_string.json": b'"a trace"',
        "bad__nan_literal.json": b'{"traceEvents": [{"ph": "X", "cat": "kernel", "ts": NaN, "dur": 1}]}',
        "bad__truncated.json": text[: len(text) // 2],
        "bad__truncated_in_string.json": text[: text.index(b'"name"') + 9],
        "bad__invalid_utf8_everywhere.json": b'{"traceEvents":[{"ph":"X","cat":"kernel","name":"\xff\xfe","ts":1,"dur":1}]}',
        "bad__invalid_utf8_top.json": b"\xff\xfe" + text,
        "bad__utf16.json": text.decode().encode("utf-16"),
        "bad__deeply_nested_top.json": b'{"traceEvents":[' + b"[" * 100_000 + b"]" * 100_000 + b"]}",
        "bad__deeply_nested_event.json": b'{"traceEvents":[{"args":' + b"[" * 100_000 + b"]" * 100_000 + b"}]}",
        "bad__gzip_truncated.json.gz": gzip.compress(text)[:-100],
        "bad__gzip_corrupt.json.gz": (lambda g: g[:20] + bytes(b ^ 0x5A for b in g[20:60]) + g[60:])(gzip.compress(text)),
        "bad__gzip_of_zeros.json.gz": gzip.compress(b"\0" * (4 << 20)),
        "bad__gzip_trailer_lies.json.gz": (lambda g: g[:-4] + (2**32 - 1).to_bytes(4, "little"))(gzip.compress(b"[1]")),
        # 9M empty events in 60 KB: over the 8M-event limit (refused before memory grows)
        "bad__gzip_bomb_empty_events.json.gz": gzip.compress(b'{"traceEvents":[' + b"{}," * 9_000_000 + b"{}]}", 9),
        "bad__binary_noise.json": bytes(range(256)) * 16,
    }
    return out


def main() -> None:
    base = _base()
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    for name, data in sorted(cases(base).items()):
        (OUT / name).write_bytes(data)
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {len(list(OUT.iterdir()))} files, {total / 1e6:.1f} MB, into {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

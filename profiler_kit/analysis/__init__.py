"""Trace analysis (no torch): ``analyze_trace(path) -> TraceAnalysis``, ``compare(a, b)``.

    a = analyze_trace("trace_vanilla.json.gz", spec="h100-sxm", label="vanilla")
    a.record                         # records.Analysis: analysis.json (docs/data-contracts.md)
    a.write_kernels_csv("kernels.csv")
    compare(a.record, analyze_trace("trace_xformers.json.gz", label="xformers").record)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import msgspec
import numpy as np

from collections import Counter

from profiler_kit.analysis.background_file import BackgroundFile, worth_forking
from profiler_kit.hardware import specs
from profiler_kit.trace import values as trace_values
from profiler_kit.trace.file import DEFAULT_LIMITS, ReadLimits
from profiler_kit.records import SCHEMA_VERSION, Analysis, GpuSpecRecord, NcuMeasurement, RoofCalibration
from profiler_kit.analysis import breakdown, kernels_csv
from profiler_kit.analysis.attention_calls import analyze_attention
from profiler_kit.analysis.categories import BACKENDS, CATEGORIES
from profiler_kit.analysis.compare import compare
from profiler_kit.analysis.distinct import distinct_row_codes, distinct_rows
from profiler_kit.analysis.critical_path import PathModel, build_path_model, critical_path
from profiler_kit.analysis.what_if import own_what_ifs
from profiler_kit.analysis.step_checks import guide_checks
from profiler_kit.analysis.findings import trace_findings
from profiler_kit.analysis.kernel_costs import BOUNDS, KernelCosts, cost_kernels
from profiler_kit.analysis.kernels import KernelTable, build_kernel_table
from profiler_kit.analysis.links import host_link_figures
from profiler_kit.analysis.memory import analyze_memory
from profiler_kit.analysis.ncu_join import join_measurement
from profiler_kit.analysis.timeline import analyze_timeline
from profiler_kit.trace import (KERNEL, MEMCPY, MEMSET, Trace, TraceError, compact_raw, devices_of,
                                one_device, read_trace)

__all__ = ["analyze_trace", "analyze_devices", "compare", "TraceAnalysis", "TraceError", "SCHEMA_VERSION",
           "KERNEL_CSV_COLUMNS"]

KERNEL_CSV_COLUMNS = ("name", "category", "stream", "start_us", "duration_us", "grid", "block",
                      "op", "op_shapes", "op_dtypes", "scope", "flops_estimate",
                      "hbm_bytes_estimate", "bound", "backend", "cost_op", "op_ancestors",
                      "device")


# The least GPU activities for which kernels.csv is written by a forked child while the analysis
# goes on (analyze_trace's kernels_csv_ahead). Writing took about 6-7 us a row on the
# development machine (1.9-2.2 s for 318k); the fork itself took the 1.2 GB parent 8 ms, and
# each page either process then writes is copied on first write. Below 50k rows (about 0.3 s
# of writing) the gain is small and, on a shared machine whose other core is busy, not there:
# written in this process. (A margin chosen, not a measured break-even.)
MIN_CSV_AHEAD_ROWS = 50_000


@dataclass(frozen=True)
class TraceAnalysis:
    label: str | None
    record: Analysis                              # analysis.json
    table: KernelTable = field(repr=False)
    costs: KernelCosts = field(repr=False)
    path_model: PathModel | None = field(default=None, repr=False)   # what cross-mode what-ifs re-time
    # kernels.csv being written by a forked child (analyze_trace's kernels_csv_ahead), or None
    kernels_csv_pending: BackgroundFile | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        """analysis.json as plain JSON types."""
        return self.record.to_builtins()

    def kernel_rows(self):
        """One dict per GPU kernel / memcpy / memset, keys KERNEL_CSV_COLUMNS."""
        for row in self._kernel_tuples():
            yield dict(zip(KERNEL_CSV_COLUMNS, row))

    def _kernel_tuples(self):
        return zip(*self._kernel_columns())

    def _kernel_columns(self, esc=None) -> list[list]:
        return kernel_columns(self.table, self.costs, esc)

    def write_kernels_csv(self, path: str | os.PathLike) -> None:
        """kernels.csv into ``path``: the file a forked child wrote meanwhile when the analysis
        started one (``kernels_csv_ahead``; written here if it failed), else written here."""
        pending = self.kernels_csv_pending
        if pending is not None and pending.take():
            pending.place(path)
        else:
            write_kernels_csv(self.table, self.costs, path)


def kernel_columns(t: KernelTable, c: KernelCosts, esc=None) -> list[list]:
    """kernels.csv as columns, KERNEL_CSV_COLUMNS order. Column-wise because each column
    is then one C-level pass (tolist, a map over a lookup table) instead of a Python loop
    body per kernel: whatever repeats (a launch shape, an op's texts, a scope) is made once
    per distinct value and looked up per kernel. With ``esc`` (kernels_csv.escaper()), the
    columns that repeat together come back as kernels_csv.Rendered fields, escaped and
    joined once per distinct value (name, category, stream; grid, block; op, op_shapes,
    op_dtypes), and duration, FLOPs and bytes formatted once per distinct value, for the
    CSV writer."""
    trace = t.trace
    gpu, spans, texts = trace.gpu, trace.spans, trace.arg_texts
    names, span_name_ids = trace.names, spans.name_id
    shapes, shape_at = distinct_rows(np.concatenate([gpu.grid, gpu.block], axis=1))
    shape_texts = [("x".join(map(str, r[:3])) if any(r[:3]) else "",
                    "x".join(map(str, r[3:])) if any(r[3:]) else "") for r in shapes]
    op_texts, op_at = _op_texts(t)
    scope_l = t.scope_node.tolist()
    scopes = {s: t.scope_of_node(s) for s in dict.fromkeys(scope_l)}
    cost_names = {-1: ""}
    cost_l = c.cost_node.tolist()
    for o in dict.fromkeys(cost_l):
        if o not in cost_names:
            cost_names[o] = names[span_name_ids[o]]
    backends = ("",) + tuple(BACKENDS)
    starts_us = (gpu.start_ns / 1000.0).tolist()
    scope_texts = list(map(scopes.__getitem__, scope_l))
    tail = [list(map(BOUNDS.__getitem__, c.bound.tolist())),
            list(map(backends.__getitem__, t.backend.tolist())),
            list(map(cost_names.__getitem__, cost_l)),
            [op_texts[i][3] for i in op_at], gpu.device.tolist()]
    if esc is not None:
        heads, head_at = distinct_rows(np.stack([gpu.name_id, t.category, gpu.stream], axis=1)
                                        .astype(np.int64))
        head_texts = [f"{esc[names[a]]},{esc[CATEGORIES[b]]},{s}" for a, b, s in heads]
        shape_fields = [f"{esc[g]},{esc[b]}" for g, b in shape_texts]
        op_fields = [f"{esc[o]},{esc[sh]},{esc[dt]}" for o, sh, dt, _ in op_texts]
        return [kernels_csv.Rendered(map(head_texts.__getitem__, head_at)),
                starts_us, kernels_csv.float_fields(t.dur_us),
                kernels_csv.Rendered(map(shape_fields.__getitem__, shape_at)),
                kernels_csv.Rendered(map(op_fields.__getitem__, op_at)), scope_texts,
                kernels_csv.float_fields(c.flops), kernels_csv.float_fields(c.hbm_bytes),
                *tail]
    shape_rows = [shape_texts[i] for i in shape_at]
    op_rows = [op_texts[i] for i in op_at]
    return [
        list(map(names.__getitem__, gpu.name_id.tolist())),
        list(map(CATEGORIES.__getitem__, t.category.tolist())),
        gpu.stream.tolist(), starts_us, t.dur_us.tolist(),
        [r[0] for r in shape_rows], [r[1] for r in shape_rows],
        [r[0] for r in op_rows], [r[1] for r in op_rows], [r[2] for r in op_rows],
        scope_texts, c.flops.tolist(), c.hbm_bytes.tolist(), *tail,
    ]


def write_kernels_csv(table: KernelTable, costs: KernelCosts, path: str | os.PathLike) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        esc = kernels_csv.escaper()
        kernels_csv.write_columns(f, KERNEL_CSV_COLUMNS, kernel_columns(table, costs, esc), esc)


def _kernels_csv_ahead(table: KernelTable, costs: KernelCosts, folder) -> BackgroundFile | None:
    """kernels.csv started in a forked child; None (written when asked) where its temporary
    file cannot be made in ``folder`` (not writable, full)."""
    try:
        return BackgroundFile(lambda tmp: write_kernels_csv(table, costs, tmp), folder, "kernels.csv")
    except OSError:
        return None


def _op_texts(t: KernelTable) -> tuple[list[tuple[str, str, str, str]], list[int]]:
    """(the distinct (op name, shapes, dtypes, enclosing ops "a < b") of the kernels'
    launching ops, four empty texts for no op; each kernel's index into them).

    Column-wise: the chains of op names come from SpanTree.op_name_chains, and the texts are
    made once per distinct (chain of op names, shapes text, dtypes text): a 1 GB trace has
    248k launching ops and a few thousand such keys, and a loop over the ops was a quarter of
    kernels.csv's time."""
    trace = t.trace
    spans, texts, names = trace.spans, trace.arg_texts, trace.names
    ops = t.op_node
    chains, chain_at = t.tree.op_name_chains(ops, spans.name_id)
    at = np.maximum(ops, 0)
    none = np.full(len(ops), -1, dtype=np.int64)
    keys, key_at = distinct_row_codes(np.stack([
        chain_at, np.where(ops >= 0, spans.input_dims[at], -1) if len(spans) else none,
        np.where(ops >= 0, spans.input_types[at], -1) if len(spans) else none], axis=1).astype(np.int64))
    compact: dict[int, str] = {}
    out = []
    for chain, d, ty in keys.tolist():
        ids = chains[chain]
        if not ids:
            out.append(("", "", "", ""))
            continue
        for i in (d, ty):
            if i not in compact:
                compact[i] = compact_raw(texts[i])
        out.append((names[ids[0]], compact[d], compact[ty], " < ".join(names[a] for a in ids[1:])))
    return out, key_at.tolist()


def _resolve_spec(spec, spec_source: str | None, trace: Trace, device_names: list[str],
                  warnings: list):
    """(GpuSpec or None, where it came from)."""
    if spec is not None and not isinstance(spec, str):
        return spec, spec_source or "config"
    if isinstance(spec, str):
        try:
            return specs.load_spec(spec), spec_source or "--gpu"
        except ValueError:
            found = specs.match_spec(spec)
            if found is None:
                raise
            return found, spec_source or "--gpu"
    if not (device_names or trace.has_gpu):
        return None, None
    known = specs.list_specs()      # reads every conf/gpu file: once, not per device name
    sms = {p.get("name"): p.get("numSms") for p in trace.device_properties if isinstance(p, dict)}
    for name in device_names:
        found = specs.match_spec(name, known)
        if found is not None and isinstance(sms.get(name), int) and sms[name] != found.sm_count:
            # "AMD Instinct MI250X / MI250" names two cards; the CU count tells which ran
            warnings.append(f"{name} reports {sms[name]} SMs/CUs, {found.key} has "
                            f"{found.sm_count}: not judged against {found.key}'s roof")
            continue
        if found is not None:
            return found, "deviceProperties"
    for props in trace.device_properties:     # generic names ("AMD Radeon Graphics")
        found = specs.match_properties(props, known)
        if found is not None:
            return found, "deviceProperties (compute capability, SM/CU count, memory)"
    if trace.has_gpu:
        names = ", ".join(device_names) or "no device name in the trace"
        warnings.append(f"no GPU spec matches {names}: no roofline figures; pass --gpu NAME "
                        f"(one of: {', '.join(s.key for s in known)})")
    return None, None


def _calibration_warnings(calibration: RoofCalibration | None, roof_basis: str, gpu_spec,
                          device_names: list[str]) -> list[str]:
    """Measured roofs of another card than the trace's, or none to judge against: said, not hidden."""
    if calibration is None:
        return (["roof basis 'measured' without measured roofs: judged against the datasheet"]
                if roof_basis == "measured" and gpu_spec is not None else [])
    if gpu_spec is None:
        return [f"measured roofs of {calibration.device_name} given, but no GPU spec: no roofline figures"]
    if device_names and calibration.device_name not in device_names:
        return [f"the measured roofs are of {calibration.device_name}, the trace ran on "
                f"{', '.join(device_names)}"]
    return []


def _graph_join_figures(table: KernelTable, trace: Trace) -> dict:
    join, dur = table.graph_join, table.dur_us
    return {
        "capture_source": trace.capture_path or "this trace",
        "replays": join.replays, "captures": join.captures,
        "replayed_count": int(join.replayed.sum()),
        "replayed_us": float(dur[join.replayed].sum()),
        "joined_count": int(join.joined.sum()), "joined_us": float(dur[join.joined].sum()),
        "name_checked_count": int(join.name_checked.sum()),
        "name_mismatches": join.name_mismatches,
        "unjoined_us": dict(join.unjoined_us), "unjoined_count": dict(join.unjoined_count),
    }


def _graph_join_warnings(f: dict, n_activities: int) -> list[str]:
    """What the join explains and what it leaves without an op, in one line each."""
    out = []
    replayed, joined = f["replayed_count"], f["joined_count"]
    share = f["joined_us"] / f["replayed_us"] if f["replayed_us"] else 0.0
    if joined:
        checked = f["name_checked_count"]
        how = (f"kernel names checked for {checked:,}" if checked else
               "by position and kind: the capture recorded no kernel names (CUDA does not)")
        out.append(f"{joined:,} of {replayed:,} graph-replayed activities ({share:.1%} of their "
                   f"time) joined to the launches that captured them ({f['capture_source']}; "
                   f"{how}): ops, shapes and modules are the capture's")
    if joined < replayed:
        reasons = "; ".join(f"{f['unjoined_count'][r]:,} {r}" for r in f["unjoined_count"])
        remedy = (" pass the capture with --capture CAPTURE.json.gz, or profile the capture too"
                  if not f["captures"] else "")
        out.append(f"{replayed - joined:,} of {n_activities:,} GPU activities were replayed from "
                   f"CUDA graphs without a capture to join ({reasons}): no op or module for "
                   f"them, so no shapes, FLOP/byte estimates or bounds; categories and attention "
                   f"backends come from kernel names;{remedy}".rstrip(";"))
    if f["name_mismatches"]:
        out.append(f"{f['name_mismatches']} replays joined by position although a kernel name "
                   "recorded at capture disagreed: check the ops of those kernels")
    return out


def analyze_devices(path, label: str | None = None, *, limits: ReadLimits = DEFAULT_LIMITS,
                    capture: str | os.PathLike | None = None, **kwargs) -> list[TraceAnalysis]:
    """One analysis per GPU of the trace (read once), most kernel time first; labels get
    ``:device<N>`` when there are several. kwargs: as :func:`analyze_trace`."""
    trace = read_trace(path, limits, capture=capture)
    devices = devices_of(trace)
    if len(devices) <= 1:
        return [analyze_trace(path, label=label, limits=limits, trace=trace, **kwargs)]
    base = label or os.path.basename(os.fspath(path))
    return [analyze_trace(path, label=f"{base}:device{d}", limits=limits, trace=trace, device=d,
                          **kwargs) for d in devices]


def _device_names(trace: Trace) -> list[str]:
    used = set(np.unique(trace.gpu.device).tolist())
    props = trace.device_properties
    chosen = [p for p in props if type(p.get("id")) is int and p["id"] in used] or list(props)
    return list(dict.fromkeys(str(p.get("name", "")) for p in chosen if p.get("name")))


def analyze_trace(path, spec=None, label: str | None = None, *,
                  spec_source: str | None = None, allow_tf32: bool | None = None,
                  spec_record: GpuSpecRecord | None = None,
                  limits: ReadLimits = DEFAULT_LIMITS, calibration: RoofCalibration | None = None,
                  roof_basis: str = "datasheet",
                  measurement: NcuMeasurement | None = None,
                  measurement_source: str | None = None,
                  capture: str | os.PathLike | None = None, device: int | None = None,
                  trace: Trace | None = None, step: str | None = None,
                  kernels_csv_ahead: str | os.PathLike | None = None) -> TraceAnalysis:
    """Analyse one Kineto trace (one GPU of it).

    spec: a GpuSpec, a spec key/alias such as "h100", or None to match the trace's
    deviceProperties. spec_source names where a given spec came from ("--gpu"); it lands in
    gpu_spec.matched_from. spec_record: the spec a run already resolved and recorded (its
    summary's gpu_spec), used as it is, never resolved again. allow_tf32: the run's TF32 setting
    (None: PyTorch's defaults). limits: how big a trace is read (tracefile.ReadLimits).
    calibration: measured roofs (roofs_measured.json), recorded beside the datasheet's;
    roof_basis "measured" judges every kernel against them (roofline.judging_spec).
    measurement: an Nsight Compute measurement of the same call (ncu_<mode>.json), joined to the
    trace's kernels (analysis/ncu_join.py) into ``record.measured``; measurement_source names its
    file. capture: a second trace holding the CUDA-graph capture of this trace's replays
    (vLLM, SGLang, xDiT write them apart); its ops and launch calls join the replayed kernels
    (analysis/graph_join.py). device: which GPU of a trace that holds several (trace/devices.py
    says why they are never merged); None: the one with most kernel time, with a warning when
    there are others (:func:`analyze_devices` analyses each). trace: the trace already read
    (``path`` then only names it). Raises TraceError for unreadable input or a device the trace
    has no activity on, and ValueError for an unknown spec key. step: the user annotation whose
    instances are the steps of the critical path (default: the profiler steps, else the graph
    replays, else the whole trace). kernels_csv_ahead: a folder (best on the file system
    kernels.csv will be written to): on a trace of MIN_CSV_AHEAD_ROWS GPU activities or more,
    and where forking is safe and pays (background_file.worth_forking), a forked child writes
    kernels.csv into a temporary file there while the analysis goes on;
    ``TraceAnalysis.write_kernels_csv`` then moves it into place. None: written when asked.
    """
    if spec_record is not None:
        spec = specs.spec_from_record(spec_record)
    if trace is None:
        trace = read_trace(path, limits, capture=capture)
    warnings: list[str] = []
    devices = devices_of(trace)
    if device is not None and device not in devices:
        raise TraceError(f"{os.fspath(path)}: no GPU activity on device {device}; the trace has "
                         f"{', '.join(map(str, sorted(devices))) or 'none'}")
    if device is None and len(devices) > 1:
        device = devices[0]
        warnings.append(f"the trace holds GPU activity of devices {', '.join(map(str, sorted(devices)))}: "
                        f"this is device {device}'s (the most kernel time); every GPU has its own "
                        "analysis (python -m profiler_kit.analyze writes one per device)")
    if device is not None and len(devices) > 1:
        trace = one_device(trace, device)
    device_names = _device_names(trace)
    gpu_spec, matched_from = _resolve_spec(spec, spec_source, trace, device_names, warnings)
    table = build_kernel_table(trace)
    costs = cost_kernels(table, gpu_spec, allow_tf32, calibration, roof_basis)
    # kernels.csv needs nothing after the costs: a forked child writes it while the rest runs
    pending = (_kernels_csv_ahead(table, costs, kernels_csv_ahead)
               if kernels_csv_ahead is not None and len(table) >= MIN_CSV_AHEAD_ROWS
               and worth_forking() else None)
    try:
        warnings.extend(_calibration_warnings(calibration, roof_basis, gpu_spec, device_names))
        timeline = analyze_timeline(table)
        path_model = build_path_model(table, step)
        if step and not path_model.steps:
            raise TraceError(f"{os.fspath(path)}: no annotation named {step!r} in the trace; pass the "
                             "name of a record_function range it holds (e.g. ProfilerStep)")
        crit = {**critical_path(path_model), "what_if": [msgspec.to_builtins(w) for w in own_what_ifs(path_model)],
                "checks": guide_checks(path_model)}
        gpu = trace.gpu
        kernel_mask = gpu.kind == KERNEL
        if not trace.has_gpu:
            warnings.append("the trace has no GPU kernels, memcpys or memsets (CPU-only "
                            "profile): GPU figures are zero")
        join = table.graph_join
        replayed = int(join.replayed.sum())
        graph_join = _graph_join_figures(table, trace) if replayed else None
        if graph_join is not None:
            warnings.extend(_graph_join_warnings(graph_join, len(gpu)))
        unlinked = int((table.op_node[~join.replayed] < 0).sum())
        if unlinked > 0:
            warnings.append(f"{unlinked} of {len(gpu)} GPU activities have no launching aten op "
                            "(no runtime call or External id links them)")
        warnings.extend(trace_values.warning_lines(Counter(dict(trace.value_warnings))))
        if trace.skipped_events:
            warnings.append(f"skipped {trace.skipped_events} events whose fields have types no "
                            "Kineto event has")
        if trace.has_gpu and not (trace.spans.input_dims > 0).any():
            warnings.append("the trace has no op shapes: FLOP/byte estimates need "
                            "torch.profiler(record_shapes=True)")
        if not len(trace.memory):
            # A graph replay allocates nothing (its memory was pooled at capture): no events, and
            # nothing to switch on; the run's own allocator figures are the peak.
            warnings.append("no [memory] events: a CUDA-graph replay allocates nothing, so the trace "
                            "has no peak memory (a run's summary measures it)" if replayed * 2 > len(gpu)
                            else "no [memory] events: peak memory needs "
                            "torch.profiler(profile_memory=True)")
        if table.tree.scope_source == "none":
            warnings.append("no module scopes (record_function 'module::' names or "
                            "with_modules=True): blocks and attention calls are by op")
        spec_dict = None
        if spec_record is not None:
            spec_dict = msgspec.to_builtins(spec_record)
        elif gpu_spec is not None:
            spec_dict = {**gpu_spec.to_dict(), "matched_from": matched_from}
        data = {
            "schema_version": SCHEMA_VERSION,
            "label": label,
            "source": {
                "path": os.fspath(path), "size_bytes": trace.size_bytes,
                "device_names": device_names,
                "device_properties": list(trace.device_properties),
                "schema": trace.schema, "has_gpu": trace.has_gpu,
                "base_us": trace.base_us,   # origin of every *start_us / ts_us in the outputs
                "scope_source": table.tree.scope_source,
            },
            "gpu_spec": spec_dict,
            "kernels": {
                "count": int(kernel_mask.sum()),
                "total_us": float(gpu.dur_ns[kernel_mask].sum() / 1000.0),
                "memcpy_count": int((gpu.kind == MEMCPY).sum()),
                "memset_count": int((gpu.kind == MEMSET).sum()),
                "memcpy_us": float(gpu.dur_ns[gpu.kind == MEMCPY].sum() / 1000.0),
                "memset_us": float(gpu.dur_ns[gpu.kind == MEMSET].sum() / 1000.0),
                "host_link": host_link_figures(table, gpu_spec),
                "graph_replay_count": int(table.graph_replayed.sum()),
                "graph_replay_us": float(table.dur_us[table.graph_replayed].sum()),
                "graph_joined_count": int(join.joined.sum()),
                "graph_joined_us": float(table.dur_us[join.joined].sum()),
            },
            "graph_join": graph_join,
            "timeline": timeline,
            "critical_path": crit if crit["steps"] else None,
            "bound_us": breakdown.bound_us(table, costs),
            "bound_by_category_us": breakdown.bound_by_category_us(table, costs),
            "categories_us": breakdown.categories_us(table),
            "blocks_us": breakdown.blocks_us(table),
            "models_us": breakdown.models_us(table),
            "attention": analyze_attention(table, costs),
            "flops_estimate": float(costs.flops.sum()),
            "hbm_bytes_estimate": float(costs.hbm_bytes.sum()),
            "roofline_floor_us": costs.roofline_floor_us if gpu_spec is not None else None,
            "roofs": msgspec.to_builtins(costs.roofs) if costs.roofs is not None else None,
            "memory": analyze_memory(table),
            "top_kernels": breakdown.top_kernels(table, costs),
            "roofline_points": breakdown.roofline_points(table, costs),
            "warnings": warnings,
        }
        record = msgspec.convert(data, Analysis, strict=False)
        if measurement is not None:
            record = msgspec.structs.replace(record, measured=join_measurement(
                table, costs, record, costs.judge, measurement, measurement_source or "measurement"))
        record = msgspec.structs.replace(record, findings=trace_findings({label or os.path.basename(os.fspath(path)): record}))
        return TraceAnalysis(label=label, record=record, table=table, costs=costs, path_model=path_model,
                             kernels_csv_pending=pending)
    except BaseException:          # no analysis: its kernels.csv is not wanted
        if pending is not None:
            pending.discard()
        raise

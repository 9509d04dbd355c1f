"""The event structs a Kineto trace is decoded into, and which table each event category feeds.

The structs declare only the fields the analysis reads: ``msgspec`` skips every other key while
parsing, which is most of a trace's text (Python frames' ids, flow events, counters).
"""

from __future__ import annotations

import msgspec

_NO_RAW = msgspec.Raw()


class _Args(msgspec.Struct, gc=False):
    # Only the keys the analysis reads; msgspec skips every other key while parsing. Types are
    # lenient (a str where an int is usual) because other tools reuse the keys: Inductor's
    # Triton ops carry "grid": "grid(100,)". Values of an unexpected type read as unknown.
    correlation: int | None = None
    external_id: int | None = msgspec.field(default=None, name="External id")
    legacy_external_id: int | None = msgspec.field(default=None, name="external id")
    stream: int | str | None = None
    device: int | str | None = None
    grid: list[int] | str | None = None
    block: list[int] | str | None = None
    nbytes: int | str | None = msgspec.field(default=None, name="bytes")
    # the kernel a launch call launched: HIP runtime events record it ("kernel"), with its
    # grid and block; CUDA ones do not. What joins a graph replay to its capture by name.
    kernel: str | None = None
    # Op shapes stay raw JSON until an op is costed: most ops never are.
    input_dims: msgspec.Raw = msgspec.field(default=_NO_RAW, name="Input Dims")
    legacy_input_dims: msgspec.Raw = msgspec.field(default=_NO_RAW, name="Input dims")
    input_types: msgspec.Raw = msgspec.field(default=_NO_RAW, name="Input type")
    concrete_inputs: msgspec.Raw = msgspec.field(default=_NO_RAW, name="Concrete Inputs")
    # [memory] instant events (profile_memory=True)
    total_allocated: int | None = msgspec.field(default=None, name="Total Allocated")
    total_reserved: int | None = msgspec.field(default=None, name="Total Reserved")
    mem_bytes: int | None = msgspec.field(default=None, name="Bytes")
    addr: int | None = msgspec.field(default=None, name="Addr")
    device_id: int | None = msgspec.field(default=None, name="Device Id")


class _Event(msgspec.Struct, gc=False):
    ph: str = ""
    cat: str = ""
    name: str = ""
    pid: int | str = 0
    tid: int | str = 0
    ts: float = 0.0
    dur: float = 0.0
    args: _Args | None = None


class _TraceFile(msgspec.Struct, gc=False):
    traceEvents: msgspec.Raw = _NO_RAW    # the event array's text: sliced and decoded in batches
    deviceProperties: list[dict] = []
    schemaVersion: int | str | None = None


# Kinds of GPU activity (GpuActivities.kind)
KERNEL, MEMCPY, MEMSET = 0, 1, 2
# Kinds of CPU span (CpuSpans.kind): aten op, record_function annotation, nn.Module python frame
OP, ANNOTATION, MODULE = 0, 1, 2

# cat -> table. Current Kineto names first, then the pre-2022 ones ("legacy" schema).
_GPU_CATS = {"kernel": KERNEL, "gpu_memcpy": MEMCPY, "gpu_memset": MEMSET,
             "Kernel": KERNEL, "Memcpy": MEMCPY, "Memset": MEMSET}
_SPAN_CATS = {"cpu_op": OP, "user_annotation": ANNOTATION, "python_function": MODULE,
              "Operator": OP, "Python": MODULE}
# cuLaunchKernel (Triton, cuDNN frontend) is logged under cuda_driver, not cuda_runtime.
_RUNTIME_CATS = {"cuda_runtime", "cuda_driver", "Runtime"}
_GPU_ANNOTATION_CATS = {"gpu_user_annotation"}
_LEGACY_CATS = {"Kernel", "Memcpy", "Memset", "Operator", "Runtime", "Python"}
_KNOWN_CATS = set(_GPU_CATS) | set(_SPAN_CATS) | _RUNTIME_CATS | _GPU_ANNOTATION_CATS
NN_MODULE_PREFIX = "nn.Module: "       # torch.profiler(with_modules=True) python frames

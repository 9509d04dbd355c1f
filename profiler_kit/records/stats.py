"""Timings and their own noise verdict (``StepStats``), shared by summary.json (step times per
mode) and roofs_measured.json (the calibration kernels' times)."""

from __future__ import annotations

import statistics

import msgspec

from profiler_kit.records.base import Record

# The step-time IQR above this fraction of the median marks a timing as noisy: a speed-up smaller
# than that spread is not resolved by the measurement. 10 % is torch.utils.benchmark's own
# threshold for its "may be noisy" warning (Measurement._IQR_WARN_THRESHOLD = 0.1).
NOISE_IQR_FRACTION = 0.10

# A speed-up under CUDA-graph replay or torch.compile counts as larger than the same run's eager
# one ("the host hides part of the gain") only beyond this relative margin, or beyond the eager
# steps' own spread where that is wider. Replayed steps spread by under 1 % of the median on the
# H100/H200 runs, eager ones by 1-10 % (docs/gpu-results.md): below 5 % the two figures are the
# same measurement, as SD3 at 1024 px showed (3.77x replayed, 3.72x eagerly).
HOST_HIDES_GAIN_MARGIN = 0.05


def host_hides_gain(replayed_speedup: float | None, eager_speedup: float | None,
                    eager_spread: float = 0.0) -> bool:
    """True when the eager speed-up falls short of the replayed one by more than the noise:
    the host's launches and Python, not the kernels, set part of the eager step."""
    if not replayed_speedup or not eager_speedup:
        return False
    return replayed_speedup > eager_speedup * (1.0 + max(HOST_HIDES_GAIN_MARGIN, eager_spread))


class StepStats(Record, kw_only=True):
    """UNet step times of one mode, ms: the measurement and its own noise verdict.

    ``noisy`` is decided here and only here (IQR > NOISE_IQR_FRACTION of the median), set on
    construction and on every read, so a stored flag can never disagree with the rule."""

    median_ms: float
    iqr_ms: float
    min_ms: float
    n: int
    noisy: bool = False

    def __post_init__(self) -> None:
        msgspec.structs.force_setattr(
            self, "noisy", bool(self.median_ms > 0 and self.iqr_ms > NOISE_IQR_FRACTION * self.median_ms))

    @property
    def iqr_fraction(self) -> float | None:
        return self.iqr_ms / self.median_ms if self.median_ms > 0 else None

    @staticmethod
    def of(times_ms: list[float]) -> "StepStats":
        if not times_ms:
            raise ValueError("StepStats.of needs at least one step time")
        q = (statistics.quantiles(times_ms, n=4, method="inclusive") if len(times_ms) > 1
             else [times_ms[0]] * 3)
        return StepStats(median_ms=statistics.median(times_ms), iqr_ms=q[2] - q[0],
                         min_ms=min(times_ms), n=len(times_ms))

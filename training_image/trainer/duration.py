"""How long the epochs will take, from the preflight's timings; the MaxRuntime warning.

The preflight times a few warm steps (trainer/preflight.py); this module turns them into one
figure:

- **robust**: the median of the timed steps, so one step slowed by a neighbour's process, a
  page-cache miss or a collector pause does not decide the estimate;
- **decoding as the loaders run it**: with no loader workers the main process decodes each
  batch before the step (the sum); with ``W`` workers they decode while the step runs, so on a
  GPU a step takes the slower of the two, ``max(step, decode / W)``. On a CPU the workers take
  cores from the step (torch spreads a CPU step over every core), so the decoding adds, spread
  over the workers: ``step + decode / W``. Each epoch's loaders also wait for their first
  batch, which one worker decodes whole;
- **validation per epoch**: validation steps x the timed validation step.
"""

from __future__ import annotations

import logging
import math
import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from contract.outputs import MAX_RUNTIME_VARIABLE

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Timing:
    """The timed steps of one kind (training or validation): the device's work per step and
    the decoding of one batch in one process, in seconds."""

    steps: tuple[float, ...]
    decodes: tuple[float, ...]

    @property
    def step(self) -> float:
        return typical(self.steps)

    @property
    def decode(self) -> float:
        return typical(self.decodes)


@dataclass(frozen=True)
class Estimate:
    """Seconds per training step and per validation step, and for the epochs left."""

    train_step: float
    valid_step: float
    job: float


def typical(seconds: Sequence[float]) -> float:
    """The median: one slow sample (or one fast one) among three or more does not move it."""
    if not seconds:
        raise ValueError("no timings: at least one is needed")
    return statistics.median(seconds)


def step_seconds(step: float, decode: float, *, workers: int, on_gpu: bool) -> float:
    """One step's wall time with its batch's decoding, as the DataLoader runs it."""
    if workers <= 0:
        return step + decode
    if on_gpu:
        return max(step, decode / workers)
    return step + decode / workers


def estimate(
    train: Timing,
    valid: Timing,
    *,
    train_steps: int,
    valid_steps: int,
    epochs: int,
    workers: int,
    on_gpu: bool,
) -> Estimate:
    """The epochs' duration: training and validation steps, and each loader's first batch."""
    train_step = step_seconds(train.step, train.decode, workers=workers, on_gpu=on_gpu)
    valid_step = step_seconds(valid.step, valid.decode, workers=workers, on_gpu=on_gpu)
    first_batches = (train.decode + (valid.decode if valid_steps else 0.0)) if workers > 0 else 0
    epoch = train_step * train_steps + valid_step * valid_steps + first_batches
    return Estimate(train_step, valid_step, epochs * epoch)


def timed_steps(job_steps: int, most: int) -> int:
    """How many warm steps to time: a tenth of the job's steps at most, and ``most``."""
    return max(0, min(most, job_steps // 10))


def readable(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60:02d} min"


def max_runtime_seconds() -> int | None:
    """The job's MaxRuntime as the launcher passes it; None when unset (a local run)."""
    raw = os.environ.get(MAX_RUNTIME_VARIABLE, "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        log.warning("ignoring %s = %r: not a whole number of seconds", MAX_RUNTIME_VARIABLE, raw)
        return None


def warn_if_over_max_runtime(job_seconds: float) -> None:
    limit = max_runtime_seconds()
    if limit is not None and job_seconds > limit:
        log.warning(
            "the estimated training time, about %s, exceeds this job's MaxRuntime of %s "
            "(%d s): SageMaker will stop it before the last epoch (the latest checkpoint is "
            "kept). Raise the job's max runtime, or lower epochs or image_size",
            readable(job_seconds),
            readable(limit),
            limit,
        )

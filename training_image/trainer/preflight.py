"""The preflight: one real training step and one validation step before epoch 1.

It runs on the job's device, with the job's batch size, on the largest images of each
split, through the same loaders, loss, optimizer step and COCO metric as the epochs.
Whatever would fail in epoch 1 or its validation fails here, in the first minute:
a user's mistake as a ``UserError`` (exit 1), a bug with its traceback (exit 2).
Out of GPU memory becomes a ConfigError naming the largest batch size that fits
(found by halving the batch). Afterwards the model, optimizer, scheduler, scaler and
random generators are put back exactly as they were, so training is unchanged.

Its step times give an estimate of the whole job's duration, logged; when it exceeds
the job's MaxRuntime (``DETRAIN_MAX_RUNTIME_SECONDS``, set by the launcher) a warning
says so with the numbers.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from contract.hyperparameters import Hyperparameters
from contract.outputs import MAX_RUNTIME_VARIABLE as MAX_RUNTIME_ENV
from trainer import accelerator, batches, engine, loading
from trainer.dataset import build as build_dataset
from trainer.errors import ConfigError
from trainer.model import DetectionModel
from trainer.tables import DetectionTable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Estimate:
    """Seconds per training step and per validation step, and for the epochs left."""

    train_step: float
    valid_step: float
    job: float


def largest(table: DetectionTable, count: int) -> DetectionTable:
    """The ``count`` images with the most pixels (repeated to fill when the table is smaller)."""
    area = table.widths.astype(np.int64) * table.heights.astype(np.int64)
    order = np.argsort(-area, kind="stable")
    return table.subset(np.resize(order, count))


def run(
    model: DetectionModel,
    *,
    train_table: DetectionTable,
    valid_table: DetectionTable,
    hp: Hyperparameters,
    device: torch.device,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    train_steps: int,
    valid_steps: int,
    epochs_left: int,
    combine: Callable[[list], list] = list,
) -> Estimate:
    """Train one batch and validate one batch, then restore every state; returns the estimate."""
    log.info("Preflight: one training step and one validation step on the largest images")
    saved = _snapshot(model, optimizer, scheduler, scaler)
    try:
        try:
            train_seconds = _train_steps(
                model, train_table, hp, hp.batch_size, device, optimizer, scheduler, scaler
            )
            valid_seconds = _valid_step(model, valid_table, hp, device, combine)
        except torch.OutOfMemoryError:
            _free(model, device)
            raise ConfigError(
                _out_of_memory(model, train_table, hp, device, optimizer, scheduler, scaler)
            ) from None
    finally:
        _restore(saved, model, optimizer, scheduler, scaler)
    estimate = _estimate(train_seconds, valid_seconds, train_steps, valid_steps, epochs_left)
    log.info(
        "Preflight passed: %.3f s per training step, %.3f s per validation step; "
        "%d epochs of %d steps will take about %s",
        estimate.train_step,
        estimate.valid_step,
        epochs_left,
        train_steps,
        _duration(estimate.job),
    )
    _warn_if_over_max_runtime(estimate.job)
    return estimate


# ---- the steps


def _first_batch(
    model: DetectionModel, table: DetectionTable, hp: Hyperparameters, batch_size: int, *, train
):
    subset = largest(table, batch_size) if train else largest(table, min(batch_size, len(table)))
    dataset = build_dataset(
        subset,
        hp.image_size,
        train=train,
        augmentation=hp.augmentation,
        max_bad_images=hp.max_bad_images,
    )
    loader = batches.loader(dataset, model.name, train=train, batch_size=batch_size)
    started = time.perf_counter()
    batch = next(iter(loader))
    return batch, time.perf_counter() - started


def _train_steps(
    model: DetectionModel,
    table: DetectionTable,
    hp: Hyperparameters,
    batch_size: int,
    device: torch.device,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
) -> float:
    """Real steps (on a GPU two: the first warms it up); seconds per step, loading included."""
    batch, load_seconds = _first_batch(model, table, hp, batch_size, train=True)
    seconds = []
    for _ in range(2 if device.type == "cuda" else 1):
        started = time.perf_counter()
        engine.train_one_epoch(
            model,
            [batch],
            optimizer,
            scheduler,
            scaler,
            device=device,
            grad_clip_norm=hp.grad_clip_norm,
            stop=threading.Event(),
            amp_dtype=accelerator.amp_dtype(hp, device),
        )
        _synchronize(device)
        seconds.append(time.perf_counter() - started)
    per_worker = load_seconds / max(1, loading.workers(hp.num_workers))
    return max(seconds[-1], per_worker)


def _valid_step(
    model: DetectionModel,
    table: DetectionTable,
    hp: Hyperparameters,
    device: torch.device,
    combine: Callable[[list], list],
) -> float:
    # A rank with no validation images still joins the metric's collective, as in the epochs.
    batches = [_first_batch(model, table, hp, hp.batch_size, train=False)[0]] if len(table) else []
    started = time.perf_counter()
    engine.validate(model, batches, device=device, stop=threading.Event(), combine=combine)
    _synchronize(device)
    return time.perf_counter() - started


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ---- out of memory


def _free(model: DetectionModel, device: torch.device) -> None:
    model.module.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _memory_gib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory / 2**30
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


def _out_of_memory(
    model: DetectionModel,
    table: DetectionTable,
    hp: Hyperparameters,
    device: torch.device,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
) -> str:
    """The message, after halving the batch until one training step fits (on this rank only)."""
    where = "this GPU's" if device.type == "cuda" else "this machine's"
    start = (
        f"batch_size {hp.batch_size} at image_size {hp.image_size} does not fit in "
        f"{where} {_memory_gib(device):.0f} GiB"
    )
    alone = dataclasses.replace(model, forward_module=None)  # no collectives while searching
    batch_size = hp.batch_size // 2
    while batch_size >= 1:
        try:
            _train_steps(alone, table, hp, batch_size, device, optimizer, scheduler, scaler)
        except torch.OutOfMemoryError:
            _free(model, device)
            batch_size //= 2
            continue
        return f"{start}; the largest that fits is about {batch_size}"
    return f"{start}; not even batch_size 1 fits: lower image_size or use a larger GPU"


# ---- state kept and restored


def _cpu_copy(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: _cpu_copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cpu_copy(v) for v in value)
    return copy.deepcopy(value)


def _snapshot(model, optimizer, scheduler, scaler) -> dict[str, Any]:
    return {
        "model": _cpu_copy(model.module.state_dict()),
        "optimizer": _cpu_copy(optimizer.state_dict()),
        "scheduler": copy.deepcopy(scheduler.state_dict()),
        "scaler": copy.deepcopy(scaler.state_dict()),
        "random": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "training": model.module.training,
    }


def _restore(saved: dict[str, Any], model, optimizer, scheduler, scaler) -> None:
    model.module.load_state_dict(saved["model"])
    model.module.zero_grad(set_to_none=True)
    model.module.train(saved["training"])
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    scaler.load_state_dict(saved["scaler"])
    random.setstate(saved["random"])
    np.random.set_state(saved["numpy"])
    torch.set_rng_state(saved["torch"])
    if saved["cuda"] is not None:
        torch.cuda.set_rng_state_all(saved["cuda"])


# ---- the estimate


def _estimate(
    train_step: float, valid_step: float, train_steps: int, valid_steps: int, epochs: int
) -> Estimate:
    job = epochs * (train_step * train_steps + valid_step * valid_steps)
    return Estimate(train_step, valid_step, job)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60:02d} min"


def max_runtime_seconds() -> int | None:
    """The job's MaxRuntime as the launcher passes it; None when unset (a local run)."""
    raw = os.environ.get(MAX_RUNTIME_ENV, "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        log.warning("ignoring %s = %r: not a whole number of seconds", MAX_RUNTIME_ENV, raw)
        return None


def _warn_if_over_max_runtime(job_seconds: float) -> None:
    limit = max_runtime_seconds()
    if limit is not None and job_seconds > limit:
        log.warning(
            "the estimated training time, about %s, exceeds this job's MaxRuntime of %s "
            "(%d s): SageMaker will stop it before the last epoch (the latest checkpoint is "
            "kept). Raise the job's max runtime, or lower epochs or image_size",
            _duration(job_seconds),
            _duration(limit),
            limit,
        )

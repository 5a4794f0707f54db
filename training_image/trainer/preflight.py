"""The preflight: the largest images through a training and a validation step before epoch 1,
then a few timed warm steps for the duration estimate.

It runs on the job's device, with the job's batch size, through the same loaders, loss,
optimizer step and COCO metric as the epochs. The first training and validation steps take
the largest images of each split: whatever would fail in epoch 1 or its validation fails
here, in the first minute: a user's mistake as a ``UserError`` (exit 1), a bug with its
traceback (exit 2). Out of GPU memory becomes a ConfigError naming the largest batch size that
fits (found by halving the batch). Afterwards the model, optimizer, scheduler, scaler and
random generators are put back exactly as they were, so training is unchanged.

Those first steps are cold (kernels, allocator, caches) and only warm the device up. The
estimate comes from up to ``MOST_TIMED_STEPS`` more training steps and ``MOST_TIMED_VALIDATIONS``
validation batches on batches drawn at random as the loader would draw them (no more than a
tenth of the job's steps), each timed apart from its decoding; trainer/duration.py turns them
into the epochs' duration, logged, and warns when it exceeds the job's MaxRuntime.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from contract.hyperparameters import Hyperparameters
from trainer import accelerator, batches, duration, engine, loading
from trainer.dataset import build as build_dataset
from trainer.duration import Estimate, Timing
from trainer.errors import ConfigError
from trainer.model import DetectionModel
from trainer.tables import DetectionTable

log = logging.getLogger(__name__)

MOST_TIMED_STEPS = 5
MOST_TIMED_VALIDATIONS = 3
SAMPLE_SEED = 20261206  # which images the timed batches take: the same on every run


def largest(table: DetectionTable, count: int) -> DetectionTable:
    """The ``count`` images with the most pixels (repeated to fill when the table is smaller)."""
    area = table.widths.astype(np.int64) * table.heights.astype(np.int64)
    order = np.argsort(-area, kind="stable")
    return table.subset(np.resize(order, count))


def drawn(table: DetectionTable, count: int, seed: int = SAMPLE_SEED) -> DetectionTable:
    """``count`` images in a seeded random order, as the epoch sampler draws them (repeated to
    fill when the table is smaller); the global random generators are left alone."""
    if not len(table):
        return table
    order = np.random.default_rng(seed).permutation(len(table))
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
    """The largest images through one training and one validation step, then the timed steps;
    every state restored after; returns the estimate.

    ``train_steps`` must be the same on every data-parallel rank (it decides how many steps,
    each a collective, are timed); ``valid_steps`` is this rank's.
    """
    timed = duration.timed_steps(train_steps * epochs_left, MOST_TIMED_STEPS)
    timed_valid = min(timed, MOST_TIMED_VALIDATIONS)
    log.info(
        "Preflight: a training and a validation step on the largest images, then %d training "
        "and %d validation steps timed on random batches",
        timed,
        timed_valid,
    )
    steps = _Steps(model, hp, device, optimizer, scheduler, scaler, combine)
    saved = _snapshot(model, optimizer, scheduler, scaler)
    try:
        try:
            cold_train = steps.train(largest(train_table, hp.batch_size), hp.batch_size)
            cold_valid = steps.validate(largest(valid_table, min(hp.batch_size, len(valid_table))))
            train = steps.train(drawn(train_table, timed * hp.batch_size), hp.batch_size)
            valid = steps.validate(drawn(valid_table, timed_valid * hp.batch_size), timed_valid)
        except torch.OutOfMemoryError:
            _free(model, device)
            raise ConfigError(_out_of_memory(steps, train_table)) from None
    finally:
        _restore(saved, model, optimizer, scheduler, scaler)
    workers = loading.workers(hp.num_workers)
    estimate = duration.estimate(
        train if timed else cold_train,
        valid if timed_valid else cold_valid,
        train_steps=train_steps,
        valid_steps=valid_steps,
        epochs=epochs_left,
        workers=workers,
        on_gpu=device.type == "cuda",
    )
    _log_timings(cold_train, cold_valid, train, valid, workers)
    log.info(
        "Preflight passed: %.3f s per training step, %.3f s per validation step; "
        "%d epochs of %d steps will take about %s (%.0f s)",
        estimate.train_step,
        estimate.valid_step,
        epochs_left,
        train_steps,
        duration.readable(estimate.job),
        estimate.job,
    )
    duration.warn_if_over_max_runtime(estimate.job)
    return estimate


def _log_timings(cold_train: Timing, cold_valid: Timing, train: Timing, valid: Timing, workers):
    def spread(values: tuple[float, ...]) -> str:
        if not values:
            return "none"
        return f"{duration.typical(values):.3f} ({min(values):.3f} to {max(values):.3f})"

    log.info(
        "Preflight timings (s): largest images: training step %.3f (cold), decoding %.3f a "
        "batch, validation step %.3f (cold); timed training steps %s, decoding %s; timed "
        "validation steps %s, decoding %s; %d loader workers",
        cold_train.step,
        cold_train.decode,
        cold_valid.step,
        spread(train.steps),
        spread(train.decodes),
        spread(valid.steps),
        spread(valid.decodes),
        workers,
    )


# ---- the steps


@dataclasses.dataclass
class _Steps:
    """Real steps as the epochs take them, each timed apart from its batch's decoding."""

    model: DetectionModel
    hp: Hyperparameters
    device: torch.device
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    combine: Callable[[list], list]

    def _batches(self, table: DetectionTable, batch_size: int, *, train: bool):
        """Each batch of ``table`` in order, decoded here (one process), with its seconds."""
        hp = self.hp
        dataset = build_dataset(
            table,
            hp.image_size,
            train=train,
            augmentation=hp.augmentation,
            max_bad_images=hp.max_bad_images,
        )
        loaded = iter(batches.loader(dataset, self.model.name, train=train, batch_size=batch_size))
        while True:
            started = time.perf_counter()
            batch = next(loaded, None)
            if batch is None:
                return
            yield batch, time.perf_counter() - started

    def train(self, table: DetectionTable, batch_size: int) -> Timing:
        """One step per batch of ``table``: seconds per step and per batch's decoding."""
        steps, decodes = [], []
        for batch, decode_seconds in self._batches(table, batch_size, train=True):
            started = time.perf_counter()
            engine.train_one_epoch(
                self.model,
                [batch],
                self.optimizer,
                self.scheduler,
                self.scaler,
                device=self.device,
                grad_clip_norm=self.hp.grad_clip_norm,
                stop=threading.Event(),
                amp_dtype=accelerator.amp_dtype(self.hp, self.device),
            )
            _synchronize(self.device)
            steps.append(time.perf_counter() - started)
            decodes.append(decode_seconds)
        return Timing(tuple(steps), tuple(decodes))

    def validate(self, table: DetectionTable, count: int = 1) -> Timing:
        """``count`` validation passes of one batch each (with the COCO metric).

        A rank with no validation images still joins each pass's collective, as in the epochs.
        """
        loaded = self._batches(table, self.hp.batch_size, train=False) if len(table) else None
        steps, decodes = [], []
        for _ in range(count):
            batch, decode_seconds = next(loaded, (None, 0.0)) if loaded else (None, 0.0)
            started = time.perf_counter()
            engine.validate(
                self.model,
                [batch] if batch is not None else [],
                device=self.device,
                stop=threading.Event(),
                combine=self.combine,
            )
            _synchronize(self.device)
            steps.append(time.perf_counter() - started)
            decodes.append(decode_seconds)
        return Timing(tuple(steps), tuple(decodes))


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


def _out_of_memory(steps: _Steps, table: DetectionTable) -> str:
    """The message, after halving the batch until one training step fits (on this rank only)."""
    hp, device = steps.hp, steps.device
    where = "this GPU's" if device.type == "cuda" else "this machine's"
    start = (
        f"batch_size {hp.batch_size} at image_size {hp.image_size} does not fit in "
        f"{where} {_memory_gib(device):.0f} GiB"
    )
    # no collectives while searching
    alone = dataclasses.replace(steps, model=dataclasses.replace(steps.model, forward_module=None))
    batch_size = hp.batch_size // 2
    while batch_size >= 1:
        try:
            alone.train(largest(table, batch_size), batch_size)
        except torch.OutOfMemoryError:
            _free(steps.model, device)
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

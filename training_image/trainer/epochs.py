"""The epoch loop: train, validate, record the row, keep the best epoch, checkpoint, stop early.

What a checkpoint records is one explicit object, ``Progress``, that the loop updates as it
goes: a checkpoint taken when an image fails to decode (``CheckpointOnDataError``) or on
SIGTERM saves where training stands.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from contract.hyperparameters import Hyperparameters
from contract.metrics import format_line
from trainer import artifacts, collectives, engine, selection
from trainer.checkpoints import Checkpointer, CheckpointOnDataError
from trainer.engine import EpochSampler, WeightAverage, World
from trainer.errors import TrainingStopped
from trainer.model import DetectionModel

log = logging.getLogger(__name__)


@dataclass
class Progress:
    """Where training stands: the epoch (0-based) and the steps done in it, the running loss
    of those steps, the finished epochs' rows, and whether the epoch's training is done."""

    epoch: int = 0
    step: int = 0
    running: tuple[float, int] = (0.0, 0)
    history: list[dict[str, float]] = field(default_factory=list)
    validating: bool = False

    @classmethod
    def resumed(cls, state: dict[str, Any]) -> Progress:
        """From a checkpoint's state ({} when the job starts afresh)."""
        return cls(
            epoch=state.get("epoch", 0),
            step=state.get("step", 0),
            running=state.get("running_loss", (0.0, 0)),
            history=state.get("history", []),
        )


def save_before_failing(checkpointer: Checkpointer, progress: Progress, batches_done: int) -> None:
    """A DataError in this pass of the batches: checkpoint the steps done so far."""
    if progress.validating:  # the epoch's training is complete; validation restarts
        checkpointer.save_before_failing(
            progress.epoch, progress.step, progress.history, progress.running
        )
    else:
        checkpointer.save_before_failing(
            progress.epoch, progress.step + batches_done, progress.history
        )


@dataclass(frozen=True, kw_only=True)
class Training:
    """The parts the loop drives (built by main.train)."""

    model: DetectionModel
    evaluated: DetectionModel  # the model validated and saved: the weight average, if any
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    ema: WeightAverage | None
    sampler: EpochSampler
    checkpointer: Checkpointer
    device: torch.device
    amp_dtype: torch.dtype | None


def run(
    parts: Training,
    progress: Progress,
    train_batches: Iterable,
    valid_batches: Iterable,
    *,
    hp: Hyperparameters,
    best: selection.Selection,
    world: World,
    stop: threading.Event,
    output_dir: Path,
    checkpoint_dir: Path,
    keep_best_model: Callable[[], str],
) -> None:
    """Epochs from ``progress`` to ``hp.epochs``; TrainingStopped on SIGTERM (checkpoint saved,
    ``keep_best_model`` saves the best epoch so far and says so in the reason)."""
    shared_stop = collectives.SharedStop(stop)
    on_data_error = functools.partial(save_before_failing, parts.checkpointer, progress)
    train_batches = CheckpointOnDataError(train_batches, on_data_error)
    valid_batches = CheckpointOnDataError(valid_batches, on_data_error)
    start_epoch = progress.epoch
    for epoch in range(start_epoch, hp.epochs):
        started = time.monotonic()
        if epoch != start_epoch:
            progress.step, progress.running = 0, (0.0, 0)
        progress.epoch, progress.validating = epoch, False
        parts.sampler.set_epoch(epoch, skip_steps=progress.step)
        result = engine.train_one_epoch(
            parts.model,
            train_batches,
            parts.optimizer,
            parts.scheduler,
            parts.scaler,
            device=parts.device,
            grad_clip_norm=hp.grad_clip_norm,
            stop=shared_stop,
            first_step=progress.step,
            running=progress.running,
            ema=parts.ema,
            amp_dtype=parts.amp_dtype,
        )
        progress.step, progress.running, progress.validating = result.steps, result.running, True
        if not result.completed:
            _stop(parts, progress, f"in epoch {epoch + 1} at step {result.steps}", keep_best_model)
        validation = engine.validate(
            parts.evaluated,
            valid_batches,
            device=parts.device,
            stop=stop,
            combine=collectives.gather,
        )
        if shared_stop.is_set():
            _stop(parts, progress, f"while validating epoch {epoch + 1}", keep_best_model)
        row = {
            "epoch": epoch + 1,
            "train_loss": collectives.mean(result.loss),
            "valid_loss": validation.loss,
            "valid_map": validation.map,
            "valid_map_50": validation.map_50,
            "lr": parts.scheduler.get_last_lr()[0],
            "epoch_seconds": round(time.monotonic() - started, 3),
        }
        progress.history.append(row)
        if best.update(row) and world.is_main:
            selection.save_best(
                checkpoint_dir, epoch + 1, best.best_score, parts.evaluated.module.state_dict()
            )
        if world.is_main:
            print(format_line(row), flush=True)
            artifacts.save_metrics(output_dir, progress.history)
        last = epoch + 1 == hp.epochs or best.should_stop
        if (epoch + 1) % hp.checkpoint_every_epochs == 0 or last:
            parts.checkpointer.save(epoch + 1, 0, (0.0, 0), progress.history)
        if best.should_stop:
            log.info(best.stop_reason())
            break


def _stop(parts: Training, progress: Progress, where: str, keep_best_model: Callable[[], str]):
    parts.checkpointer.save(progress.epoch, progress.step, progress.running, progress.history)
    raise TrainingStopped(f"stopped by SIGTERM {where}; checkpoint saved" + keep_best_model())

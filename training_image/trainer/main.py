"""The trainer's entry point: SageMaker runs ``<image> train``, which calls ``main()``.

One failure handler, at the top (the training toolkit's rule): it writes
``/opt/ml/output/failure`` (a short reason for the user's mistakes, the
traceback for bugs; SageMaker shows the first 1,024 characters), empties
``/opt/ml/model`` so no half-made model is uploaded, and exits non-zero.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from contract import TRAINING_CHANNEL, VALIDATION_CHANNEL
from contract.hyperparameters import Hyperparameters
from contract.metrics import format_line
from contract.sagemaker import EXIT_STOPPED, FAILURE_REASON_CHARS
from trainer import (
    accelerator,
    artifacts,
    checkpoints,
    compat,
    data,
    distributed,
    engine,
    environment,
)
from trainer import model as models
from trainer.data import DetectionTable
from trainer.engine import World
from trainer.environment import TrainingEnvironment
from trainer.errors import ConfigError, TrainingStopped, UserError
from trainer.model import DetectionModel

log = logging.getLogger("trainer")

EXIT_USER_ERROR = 1
EXIT_BUG = 2


def train() -> None:
    """One training process: the whole job, or one data-parallel rank of it."""
    log.info("Reading the training environment")
    env = environment.load()
    hp = env.hyperparameters
    world = World.from_env()
    device = accelerator.select(world.local_rank)
    use_amp = hp.amp and device.type == "cuda"
    log.info(
        "job %s on %s (%s of %s), device %s, amp %s, hyperparameters %s",
        env.job_name,
        env.current_host,
        world.rank + 1,
        world.size,
        device,
        use_amp,
        hp.as_dict(),
    )
    _seed(hp.seed)
    stop = _stop_on_sigterm()
    shared_stop = distributed.SharedStop(stop)
    if world.local_rank == 0:
        artifacts.clear(env.model_dir)

    log.info("Loading data")
    train_table, valid_table, train_share = _load_data(env, world)

    log.info("Creating model")
    compat.apply()  # IceVision's mends, before its first import
    model = models.create(hp, train_table.class_names).to(device)
    steps = distributed.agreed_steps(len(train_table), hp.batch_size, train_share)
    sampler = engine.EpochSampler(
        len(train_table), seed=hp.seed, batch_size=hp.batch_size, world=train_share, steps=steps
    )
    distributed.wrap(model, device)
    train_batches, valid_batches = _data_loaders(
        model, train_table, valid_table, sampler, hp, device
    )
    optimizer = engine.optimizer(model, hp)
    distributed.scale_learning_rate(optimizer, batch_size=hp.batch_size, world_size=world.size)
    scheduler = engine.schedule(optimizer, sampler.steps(), hp.epochs)
    scaler = torch.amp.GradScaler(device.type, enabled=use_amp)
    checkpointer = _Checkpointer(
        env.checkpoint_dir,
        checkpoints.Identity(hp.model, hp.backbone, hp.image_size, train_table.class_names),
        world,
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        scaler=scaler,
    )
    resumed = checkpointer.resume()
    start_epoch, start_step = resumed.get("epoch", 0), resumed.get("step", 0)
    history: list[dict[str, float]] = resumed.get("history", [])
    running = resumed.get("running_loss", (0.0, 0))

    log.info(
        "Start training: epochs %d to %d, %d steps each",
        start_epoch + 1,
        hp.epochs,
        sampler.steps(),
    )
    for epoch in range(start_epoch, hp.epochs):
        started = time.monotonic()
        first_step = start_step if epoch == start_epoch else 0
        sampler.set_epoch(epoch, skip_steps=first_step)
        result = engine.train_one_epoch(
            model,
            train_batches,
            optimizer,
            scheduler,
            scaler,
            device=device,
            grad_clip_norm=hp.grad_clip_norm,
            stop=shared_stop,
            first_step=first_step,
            running=running if epoch == start_epoch else (0.0, 0),
        )
        if not result.completed:
            checkpointer.save(epoch, result.steps, result.running, history)
            raise TrainingStopped(
                f"stopped by SIGTERM in epoch {epoch + 1} at step {result.steps}; checkpoint saved"
            )
        validation = engine.validate(
            model, valid_batches, device=device, stop=stop, combine=distributed.gather
        )
        if shared_stop.is_set():
            checkpointer.save(epoch, result.steps, result.running, history)
            raise TrainingStopped(
                f"stopped by SIGTERM while validating epoch {epoch + 1}; checkpoint saved"
            )
        row = {
            "epoch": epoch + 1,
            "train_loss": distributed.mean(result.loss),
            "valid_loss": validation.loss,
            "valid_map": validation.map,
            "valid_map_50": validation.map_50,
            "lr": scheduler.get_last_lr()[0],
            "epoch_seconds": round(time.monotonic() - started, 3),
        }
        history.append(row)
        if world.is_main:
            print(format_line(row), flush=True)
            artifacts.save_metrics(env.output_data_dir, history)
        if (epoch + 1) % hp.checkpoint_every_epochs == 0 or epoch + 1 == hp.epochs:
            checkpointer.save(epoch + 1, 0, (0.0, 0), history)

    if world.is_main:
        log.info("Saving the model to %s", env.model_dir)
        _save_model(env, model, hp, history)
    log.info("Training complete")


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _stop_on_sigterm() -> threading.Event:
    """SageMaker sends SIGTERM, then SIGKILL 120 s later: finish the step, checkpoint, exit."""
    stop = threading.Event()

    def handle(signum: int, _frame: object) -> None:
        log.warning("received %s: stopping after the current step", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    return stop


def _load_data(
    env: TrainingEnvironment, world: World
) -> tuple[DetectionTable, DetectionTable, World]:
    """The training table, this rank's share of the validation table, and the training share."""
    hp = env.hyperparameters
    train_table = data.load(env.channels[TRAINING_CHANNEL])
    if VALIDATION_CHANNEL in env.channels:
        valid_table = data.load(env.channels[VALIDATION_CHANNEL], train_table.class_names)
    else:
        train_table, valid_table = data.split(train_table, hp.valid_fraction, hp.seed)
    log.info("%d training images, %d validation images", len(train_table), len(valid_table))
    distributed.check_same_classes(train_table.class_names, env.current_host)
    train_share, valid_share = distributed.shares(env, world)
    valid_table = valid_table.subset(distributed.rows(valid_share, len(valid_table)))
    return train_table, valid_table, train_share


def _data_loaders(
    model: DetectionModel,
    train_table: DetectionTable,
    valid_table: DetectionTable,
    sampler: engine.EpochSampler,
    hp: Hyperparameters,
    device: torch.device,
) -> tuple[Any, Any]:
    workers = min(hp.num_workers, os.cpu_count() or 1)
    options = {
        "batch_size": hp.batch_size,
        "num_workers": workers,
        "pin_memory": device.type == "cuda",
        # Loader workers fork: a data-parallel rank is itself a spawned process, whose default
        # start method (spawn) cannot pickle IceVision's collate closures.
        "multiprocessing_context": "fork" if workers else None,
    }
    train_batches = model.kind.train_dl(
        data.dataset(train_table, hp.image_size, train=True),
        sampler=sampler,
        shuffle=False,
        **options,
    )
    valid_batches = model.kind.valid_dl(
        data.dataset(valid_table, hp.image_size, train=False), shuffle=False, **options
    )
    return train_batches, valid_batches


@dataclass(frozen=True)
class _Checkpointer:
    """Rank 0 picks the checkpoint every rank resumes from, and only rank 0 writes them."""

    folder: Path
    identity: checkpoints.Identity
    world: World
    model: DetectionModel
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler

    def resume(self) -> dict[str, Any]:
        """Restore the latest usable checkpoint into the model and optimizer; {} if none."""
        latest = checkpoints.latest(self.folder, self.identity) if self.world.is_main else None
        resumed = distributed.broadcast(latest) or {}
        if resumed:
            self.model.module.load_state_dict(resumed["model_state"])
            self.optimizer.load_state_dict(resumed["optimizer"])
            self.scheduler.load_state_dict(resumed["scheduler"])
            self.scaler.load_state_dict(resumed["scaler"])
        return resumed

    def save(
        self, epoch: int, step: int, running_loss: tuple[float, int], history: list[dict]
    ) -> None:
        if self.world.is_main:
            state = {
                "model_state": self.model.module.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(),
                "history": history,
                "running_loss": running_loss,
            }
            checkpoints.save(self.folder, self.identity, epoch=epoch, step=step, state=state)
        distributed.barrier()


def _save_model(
    env: TrainingEnvironment, model: DetectionModel, hp: Hyperparameters, history: list[dict]
) -> None:
    best = max(history, key=lambda r: r["valid_map"]) if history else {}
    summary = {
        "epochs": hp.epochs,
        "hyperparameters": hp.as_dict(),
        "last": history[-1] if history else {},
        "best_valid_map": best,
    }
    artifacts.save_model(env.model_dir, model, summary=summary)


# ---- the entry and its failure handler


def _check_arguments(argv: list[str]) -> None:
    if argv[:1] == ["train"]:
        argv = argv[1:]
    if argv:
        raise ConfigError(
            f"unexpected arguments {argv}; allowed: nothing, or the single word 'train'"
        )


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stdout,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    base = environment.base_dir()
    try:
        _check_arguments(sys.argv[1:] if argv is None else argv)
        distributed.run(train, failure_text=_failure_text, exit_code=_exit_code)
        return 0
    except Exception as error:
        text = _failure_text(error)
        log.error("training failed: %s", text[: 4 * FAILURE_REASON_CHARS])
        artifacts.clear(environment.model_dir(base))
        try:
            failure = environment.failure_file(base)
            failure.parent.mkdir(parents=True, exist_ok=True)
            failure.write_text(text, encoding="utf-8")
        except OSError as write_error:
            log.error("could not write the failure file: %s", write_error)
        return _exit_code(error)


def _failure_text(error: BaseException) -> str:
    if isinstance(error, distributed.ClusterFailed):
        return error.text
    summary = f"{type(error).__name__}: {error}"
    if isinstance(error, (UserError, TrainingStopped)):
        return summary
    details = "".join(traceback.format_exception(error))
    return f"{summary}\n\n{details}"


def _exit_code(error: BaseException) -> int:
    if isinstance(error, distributed.ClusterFailed):
        return error.exit_code
    if isinstance(error, TrainingStopped):
        return EXIT_STOPPED
    return EXIT_USER_ERROR if isinstance(error, UserError) else EXIT_BUG


if __name__ == "__main__":
    sys.exit(main())

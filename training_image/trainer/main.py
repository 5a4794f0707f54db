"""The trainer's entry point: SageMaker runs ``<image> train``, which calls ``main()``.

One failure handler, at the top (the training toolkit's rule): it writes
``/opt/ml/output/failure`` (a short reason for the user's mistakes, the
traceback for bugs; SageMaker shows the first 1,024 characters), empties
``/opt/ml/model`` so no half-made model is uploaded, and exits non-zero.
"""

from __future__ import annotations

import logging
import math
import random
import signal
import sys
import threading
import time
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from contract import TRAINING_CHANNEL, VALIDATION_CHANNEL
from contract.hyperparameters import AUTO, Hyperparameters
from contract.sagemaker import EXIT_STOPPED, FAILURE_REASON_CHARS
from trainer import (
    accelerator,
    agent,
    artifacts,
    batches,
    checkpoints,
    collectives,
    dataset,
    device_decode,
    engine,
    environment,
    epochs,
    errors,
    icevision_patches,
    loading,
    lr_finder,
    preflight,
    report,
    selection,
    sharding,
    tables,
)
from trainer import model as models
from trainer.engine import World
from trainer.environment import TrainingEnvironment
from trainer.errors import ConfigError
from trainer.model import DetectionModel
from trainer.tables import DetectionTable

log = logging.getLogger("trainer")


def train() -> None:
    """One training process: the whole job, or one data-parallel rank of it."""
    job_started = time.monotonic()
    log.info("Reading the training environment")
    env = environment.load()
    hp = env.hyperparameters
    world = World.from_env()
    device = accelerator.select(world.local_rank)
    amp_dtype = accelerator.amp_dtype(hp, device)
    log.info(
        "job %s on %s (%s of %s), device %s, autocast %s, hyperparameters %s",
        env.job_name,
        env.current_host,
        world.rank + 1,
        world.size,
        device,
        amp_dtype or "off",
        hp.as_dict(),
    )
    _seed(hp.seed)
    stop = _stop_on_sigterm()
    if world.local_rank == 0:
        artifacts.clear(env.model_dir)

    log.info("Loading data")
    train_table, valid_table, train_share = _load_data(env, world)

    log.info("Creating model")
    icevision_patches.apply()  # IceVision's mends, before its first import
    model = models.create(hp, train_table.class_names).to(device)
    steps = sharding.agreed_steps(len(train_table), hp.batch_size, train_share)
    sampler = engine.EpochSampler(
        len(train_table), seed=hp.seed, batch_size=hp.batch_size, world=train_share, steps=steps
    )
    collectives.wrap(model, device)
    loader_options = loading.options(hp.num_workers, hp.batch_size, device)
    log.info("%d DataLoader workers per process", loader_options["num_workers"])
    on_device, why = device_decode.choose(hp, device, loading.vcpus_per_gpu())
    log.info("JPEGs decoded on %s (%s)", device if on_device else "the CPU workers", why)
    train_batches, valid_batches = _data_loaders(
        model, train_table, valid_table, sampler, hp, loader_options, decode_on_device=on_device
    )
    optimizer = engine.optimizer(
        model, hp, lr_finder.START if hp.learning_rate == AUTO else hp.learning_rate
    )
    if hp.learning_rate != AUTO:
        collectives.scale_learning_rate(optimizer, batch_size=hp.batch_size, world_size=world.size)
    scheduler = engine.schedule(optimizer, sampler.steps(), hp.epochs, hp.schedule)
    ema = engine.WeightAverage(model, hp.ema_decay) if hp.ema else None
    evaluated = replace(model, module=ema.module, forward_module=None) if ema else model
    scaler = torch.amp.GradScaler(device.type, enabled=accelerator.needs_loss_scaling(amp_dtype))
    checkpointer = checkpoints.Checkpointer(
        env.checkpoint_dir,
        checkpoints.Identity(hp.model, hp.backbone, hp.image_size, train_table.class_names),
        world,
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        scaler=scaler,
        ema=ema,
    )
    resumed = checkpointer.resume()
    progress = epochs.Progress.resumed(resumed)
    best = collectives.broadcast(
        selection.resumed(
            hp.select_metric, hp.early_stopping_patience, progress.history, env.checkpoint_dir
        )
        if world.is_main
        else None
    )

    # ---- preflight: fail in the first minute, never after a paid epoch (trainer/preflight.py)
    preflight.run(
        model,
        train_table=train_table,
        valid_table=valid_table,
        hp=hp,
        device=device,
        optimizer=optimizer,
        scheduler=scheduler,
        scaler=scaler,
        train_steps=sampler.steps(),
        valid_steps=math.ceil(len(valid_table) / hp.batch_size),
        epochs_left=hp.epochs - progress.epoch,
        combine=collectives.gather,
    )
    # ---- learning_rate=auto: the range test (lr_finder.py), after the preflight and once per
    # job (a resumed job keeps the schedule it checkpointed); the schedule is built on its pick
    if hp.learning_rate == AUTO and not resumed:
        lr_finder.apply(env, world, model, train_batches, optimizer, device, amp_dtype)
        scheduler = engine.schedule(optimizer, sampler.steps(), hp.epochs, hp.schedule)
        checkpointer.scheduler = scheduler
    ran = _settings_ran(hp, world, device, amp_dtype, loader_options, optimizer, scheduler)

    log.info(
        "Start training: epochs %d to %d, %d steps each",
        progress.epoch + 1,
        hp.epochs,
        sampler.steps(),
    )
    training_started = time.monotonic()
    parts = epochs.Training(
        model=model,
        evaluated=evaluated,
        optimizer=optimizer,
        scheduler=scheduler,
        scaler=scaler,
        ema=ema,
        sampler=sampler,
        checkpointer=checkpointer,
        device=device,
        amp_dtype=amp_dtype,
    )
    epochs.run(
        parts,
        progress,
        train_batches,
        valid_batches,
        hp=hp,
        best=best,
        world=world,
        stop=stop,
        output_dir=env.output_data_dir,
        checkpoint_dir=env.checkpoint_dir,
        keep_best_model=lambda: _keep_best_model(
            env, evaluated, best, progress.history, ran, world
        ),
    )

    history = progress.history
    if world.is_main:
        log.info("Saving the model to %s", env.model_dir)
        _save_model(env, evaluated, best, history, ran)
        log.info("Writing the job report")
        timings = {
            "setup: data, model, resume": training_started - job_started,
            f"{len(history)} epochs: training and validation": sum(
                r["epoch_seconds"] for r in history
            ),
        }
        report.write_safely(
            env.output_data_dir,
            lambda: report.ReportInputs(
                job_name=env.job_name,
                train_table=train_table,
                valid_table=valid_table,
                predictions=report.predict(evaluated, valid_batches, valid_table, device),
                history=history,
                model_epoch=best.summary(history),
                hyperparameters=hp.as_dict(),
                timings=timings,
            ),
        )
    log.info("Training complete")


def _settings_ran(
    hp: Hyperparameters,
    world: World,
    device: torch.device,
    amp_dtype: torch.dtype | None,
    loader_options: dict[str, Any],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> dict[str, Any]:
    """What the job ran with, where it differs from what was asked: config.json keeps both."""
    return {
        "device": device.type,
        "autocast": str(amp_dtype).removeprefix("torch.") if amp_dtype else "off",
        "processes": world.size,
        "effective_batch_size": hp.batch_size * world.size,
        "dataloader_workers_per_process": loader_options["num_workers"],
        "learning_rate": engine.peak_learning_rate(optimizer, scheduler),
    }


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
    bad = hp.max_bad_images
    train_table, split_valid = tables.load_splits(
        env.channels[TRAINING_CHANNEL], max_bad_images=bad
    )
    if VALIDATION_CHANNEL in env.channels:
        valid_table = tables.load(
            env.channels[VALIDATION_CHANNEL], train_table.class_names, max_bad_images=bad
        )
    elif split_valid is not None:  # the dataset's own train/ and valid/ (or val/) splits
        valid_table = split_valid
    else:
        train_table, valid_table = tables.split(train_table, hp.valid_fraction, hp.seed)
    log.info("%d training images, %d validation images", len(train_table), len(valid_table))
    collectives.check_same_classes(train_table.class_names, env.current_host)
    train_share, valid_share = sharding.shares(env, world)
    valid_table = valid_table.subset(sharding.rows(valid_share, len(valid_table)))
    return train_table, valid_table, train_share


def _data_loaders(
    model: DetectionModel,
    train_table: DetectionTable,
    valid_table: DetectionTable,
    sampler: engine.EpochSampler,
    hp: Hyperparameters,
    options: dict[str, Any],
    *,
    decode_on_device: bool,
) -> tuple[Any, Any]:
    train_batches = batches.loader(
        dataset.build(
            train_table,
            hp.image_size,
            train=True,
            augmentation=hp.augmentation,
            max_bad_images=hp.max_bad_images,
            decode_on_device=decode_on_device,
        ),
        model.name,
        train=True,
        sampler=sampler,
        **options,
    )
    valid_batches = batches.loader(
        dataset.build(
            valid_table,
            hp.image_size,
            train=False,
            max_bad_images=hp.max_bad_images,
            decode_on_device=decode_on_device,
        ),
        model.name,
        train=False,
        **options,
    )
    return train_batches, valid_batches


def _save_model(
    env: TrainingEnvironment,
    model: DetectionModel,
    best: selection.Selection,
    history: list[dict],
    ran: dict[str, Any],
) -> None:
    """Save the best epoch's weights (the last epoch's when no epoch scored) as the model."""
    weights = selection.load_best(env.checkpoint_dir, best)
    if weights is not None:
        model.module.load_state_dict(weights)
        log.info("the model is epoch %d's: %s %.6g", best.best_epoch, best.metric, best.best_score)
    else:
        log.warning("no epoch has a %s score: the model is the last epoch's", best.metric)
    hp = env.hyperparameters
    summary = {
        "epochs": hp.epochs,
        "hyperparameters": hp.as_dict(),  # as asked
        "ran": ran,  # as run: autocast, workers, the learning rate picked and scaled
        "last": history[-1] if history else {},
        "model_epoch": best.summary(history),
    }
    artifacts.save_model(env.model_dir, model, summary=summary)


def _keep_best_model(
    env: TrainingEnvironment,
    model: DetectionModel,
    best: selection.Selection,
    history: list[dict],
    ran: dict[str, Any],
    world: World,
) -> str:
    """On SIGTERM: save the best epoch so far as the model; what the failure reason adds."""
    if not best.best_epoch:
        return ""
    if world.is_main:
        _save_model(env, model, best, history, ran)
    return f"; the model is epoch {best.best_epoch}'s ({best.metric} {best.best_score:.6g})"


# ---- the entry and its failure handler


def _check_arguments(argv: list[str]) -> None:
    if argv[:1] == ["train"]:
        argv = argv[1:]
    if argv:
        raise ConfigError(
            f"unexpected arguments {argv}; allowed: nothing, 'train', or 'self-check' alone"
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
        agent.run(train)
        return 0
    except Exception as error:
        text = errors.failure_text(error)
        log.error("training failed: %s", text[: 4 * FAILURE_REASON_CHARS])
        if errors.exit_code(error) != EXIT_STOPPED:  # a stopped job keeps its best epoch's model
            artifacts.clear(environment.model_dir(base))
        try:
            failure = environment.failure_file(base)
            failure.parent.mkdir(parents=True, exist_ok=True)
            failure.write_text(text, encoding="utf-8")
        except OSError as write_error:
            log.error("could not write the failure file: %s", write_error)
        return errors.exit_code(error)


if __name__ == "__main__":
    sys.exit(main())

"""One epoch of SGD steps and one validation pass with COCO mAP (the loop over epochs is
epochs.py), the optimizer and its schedule.

The same code runs in one process or in several (data-parallel, agent.py): ``World`` says
which rank this is, ``EpochSampler`` gives each rank its share of a seeded order, and only
the main rank writes files.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from timm.utils import ModelEmaV3
from torch.utils.data import Sampler

from contract.hyperparameters import Hyperparameters
from trainer import accelerator
from trainer.errors import TrainingDiverged
from trainer.evaluation import coco_map
from trainer.model import DetectionModel

log = logging.getLogger(__name__)

MOMENTUM = 0.9
ADAM_BETAS = (0.9, 0.99)  # fastai's Adam defaults
ADAM_EPS = 1e-5
WARMUP_STEPS = 500
LOG_EVERY_SECONDS = 30.0


@dataclass(frozen=True)
class World:
    """This process's place among the training processes (torchrun's variables)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> World:
        return cls(
            rank=int(os.environ.get("RANK", 0)),
            size=int(os.environ.get("WORLD_SIZE", 1)),
            local_rank=int(os.environ.get("LOCAL_RANK", 0)),
        )


class EpochSampler(Sampler[int]):
    """A seeded permutation per epoch, split across ranks, in full batches; can skip steps done."""

    def __init__(
        self, length: int, *, seed: int, batch_size: int, world: World = World(), steps: int = 0
    ) -> None:
        self.length, self.seed, self.batch_size, self.world = length, seed, batch_size, world
        self.epoch, self.skip_steps = 0, 0
        self.agreed_steps = steps  # data-parallel: the same count on every rank (0: this rank's)

    def set_epoch(self, epoch: int, skip_steps: int = 0) -> None:
        self.epoch, self.skip_steps = epoch, skip_steps

    def _indices(self) -> np.ndarray:
        order = np.random.default_rng((self.seed, self.epoch)).permutation(self.length)
        mine = order[self.world.rank :: self.world.size]
        # Full batches only, repeating images to fill the last: a batch of one breaks BatchNorm.
        padded = np.resize(mine, self.steps() * self.batch_size)
        return padded[self.skip_steps * self.batch_size :]

    def __iter__(self) -> Iterator[int]:
        return iter(self._indices().tolist())

    def __len__(self) -> int:
        return len(self._indices())

    def steps(self) -> int:
        return self.agreed_steps or math.ceil(
            math.ceil((self.length - self.world.rank) / self.world.size) / self.batch_size
        )


def optimizer(
    model: DetectionModel, hp: Hyperparameters, lr: float | None = None
) -> torch.optim.Optimizer:
    """SGD with momentum, or AdamW (fastai's betas and eps), over the trainable parameters,
    at ``lr`` (default: ``hp.learning_rate``)."""
    params = [p for p in model.module.parameters() if p.requires_grad]
    lr = hp.learning_rate if lr is None else lr
    fused = accelerator.optimizer_options(params)
    if hp.optimizer == "adamw":
        return torch.optim.AdamW(
            params, lr=lr, betas=ADAM_BETAS, eps=ADAM_EPS, weight_decay=hp.weight_decay, **fused
        )
    return torch.optim.SGD(params, lr=lr, momentum=MOMENTUM, weight_decay=hp.weight_decay, **fused)


def schedule(
    opt: torch.optim.Optimizer, steps_per_epoch: int, epochs: int, kind: str = "cosine"
) -> torch.optim.lr_scheduler.LRScheduler:
    """Stepped once per batch. ``cosine``: linear warm-up, then cosine decay to zero.
    ``onecycle``: fastai's fit_one_cycle (cosine up for 25% of the steps from lr/25, then
    down to lr/1e5; momentum or Adam's beta1 cycles 0.95 -> 0.85 -> 0.95)."""
    total = max(1, steps_per_epoch * epochs)
    if kind == "onecycle":
        cycle = max(total + 1, 4)  # very short runs: at least 2 steps up (OneCycleLR divides)
        return torch.optim.lr_scheduler.OneCycleLR(
            opt,
            max_lr=[group["lr"] for group in opt.param_groups],
            total_steps=cycle,
            pct_start=max(0.25, 2 / cycle),
            div_factor=25.0,
            final_div_factor=1e5 / 25.0,
            base_momentum=0.85,
            max_momentum=0.95,
        )
    warmup = min(WARMUP_STEPS, steps_per_epoch, total - 1)

    def factor(step: int) -> float:
        if step < warmup:
            return 0.001 + (1 - 0.001) * step / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


class WeightAverage:
    """An exponential moving average of the weights and BatchNorm statistics (timm's
    ModelEmaV3) with its warm-up: the decay grows from 0 towards ``decay`` as steps pass,
    so short runs average sensibly too."""

    def __init__(self, model: DetectionModel, decay: float) -> None:
        self.ema = ModelEmaV3(model.module, decay=decay, use_warmup=True)
        self.steps = 0

    @property
    def module(self) -> torch.nn.Module:
        return self.ema.module

    def update(self, module: torch.nn.Module) -> None:
        self.steps += 1
        self.ema.update(module, step=self.steps)

    def state_dict(self) -> dict:
        return {"module": self.ema.module.state_dict(), "steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        self.ema.module.load_state_dict(state["module"])
        self.steps = state["steps"]


@dataclass(frozen=True)
class EpochResult:
    running: tuple[float, int]  # summed loss and number of steps, across resumes
    steps: int  # steps done in this epoch, counting those before a resume
    completed: bool

    @property
    def loss(self) -> float:
        total, count = self.running
        return total / count if count else math.nan


def train_one_epoch(
    model: DetectionModel,
    batches: Iterable,
    opt: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    *,
    device: torch.device,
    grad_clip_norm: float,
    stop: threading.Event,
    first_step: int = 0,
    running: tuple[float, int] = (0.0, 0),
    ema: WeightAverage | None = None,
    amp_dtype: torch.dtype | None = None,
) -> EpochResult:
    """SGD over ``batches``; returns early (completed=False) once ``stop`` is set.

    Autocast runs in ``amp_dtype`` when given, else in float16 when ``scaler`` is enabled.
    """
    model.module.train()
    (total, count), step = running, first_step
    last_log = time.monotonic()
    for (xb, yb), _records in batches:
        if stop.is_set():
            return EpochResult((total, count), step, completed=False)
        if amp_dtype is None and scaler.is_enabled():
            amp_dtype = torch.float16
        loss = step_once(model, (xb, yb), opt, scaler, device, grad_clip_norm, amp_dtype)
        scheduler.step()
        if ema is not None:
            ema.update(model.module)
        value = loss.item()
        if not math.isfinite(value):
            raise TrainingDiverged(
                f"training loss is {value} at epoch step {step}; try a lower learning_rate"
            )
        total, count, step = total + value, count + 1, step + 1
        if time.monotonic() - last_log > LOG_EVERY_SECONDS:
            log.info("step %d: loss %.4f", step, total / count)
            last_log = time.monotonic()
    return EpochResult((total, count), step, completed=not stop.is_set())


def step_once(
    model: DetectionModel,
    batch: Any,
    opt: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    device: torch.device,
    grad_clip_norm: float,
    amp_dtype: torch.dtype | None,
) -> torch.Tensor:
    """One optimizer step on one batch (autocast in ``amp_dtype``, clipping, loss scaling);
    returns the loss."""
    with torch.autocast(device.type, dtype=amp_dtype or torch.float16, enabled=bool(amp_dtype)):
        loss = model.losses(batch, device)
    opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if grad_clip_norm > 0:
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(model.module.parameters(), grad_clip_norm)
    scaler.step(opt)
    scaler.update()
    return loss


@dataclass(frozen=True)
class Validation:
    loss: float
    map: float
    map_50: float


def validate(
    model: DetectionModel,
    batches: Iterable,
    *,
    device: torch.device,
    stop: threading.Event,
    combine: Callable[[list], list] = list,
) -> Validation:
    """Loss and COCO mAP; ``combine`` joins every rank's share of the validation set."""
    losses, truths, predictions = [], [], []
    for batch, records in batches:
        if stop.is_set():
            break
        loss, preds = model.validate(batch, records, device)
        losses.append(loss)
        predictions.extend(preds)
        truths.extend(_truth(r) for r in records)
    model.module.train()
    losses, truths, predictions = combine(losses), combine(truths), combine(predictions)
    mean_ap, ap_50 = coco_map(truths, predictions, len(model.class_names))
    return Validation(float(np.mean(losses)) if losses else math.nan, mean_ap, ap_50)


def _truth(sample) -> tuple[np.ndarray, np.ndarray]:
    return sample.boxes.reshape(-1, 4), sample.labels


def peak_learning_rate(
    opt: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LRScheduler
) -> float:
    """The schedule's top learning rate, the one ``learning_rate`` sets (after the range test
    and the linear scaling rule): OneCycleLR's ``max_lr``, else the schedule's base rate."""
    return float(opt.param_groups[0].get("max_lr", scheduler.base_lrs[0]))

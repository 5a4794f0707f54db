"""``learning_rate=auto``: a learning-rate range test before training (Smith, 2017; fastai's
``lr_find``).

The learning rate grows exponentially from ``START`` to ``END`` over at most ``MAX_STEPS``
training steps (at most ``MAX_SECONDS``); the loss is smoothed (an exponential moving
average, debiased); the test stops early once the smoothed loss exceeds 4x its minimum or
is not finite. The pick is fastai's ``valley`` rule: the longest stretch over which the
loss keeps falling, two thirds of the way down it (the first 10% of the points and the last
5 are left out, as fastai does). With too few points (the time limit came first), there is
no pick (``suggestion`` is None) and the caller keeps the recipe's learning rate.
The model, the optimizer and the BatchNorm statistics are restored afterwards.

Data parallel: every rank takes the same steps through DDP (gradients averaged), the loss
is averaged across ranks and the time limit is agreed (any rank over it stops all), so
every rank computes the same curve; rank 0's pick is broadcast all the same, and rank 0
writes the plot.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from contract import recipes
from trainer import accelerator, collectives, engine
from trainer.environment import TrainingEnvironment
from trainer.model import DetectionModel

log = logging.getLogger(__name__)

START, END = 1e-7, 10.0
MAX_STEPS = 100
MAX_SECONDS = 180.0
SMOOTHING = 0.98
DIVERGED = 4.0
PLOT_NAME = "lr_find.png"


@dataclass(frozen=True)
class RangeTest:
    learning_rates: list[float]
    losses: list[float]  # smoothed
    suggestion: float | None
    seconds: float


def _forever(batches: Iterable) -> Iterator:
    while True:
        yield from batches


def find(
    model: DetectionModel,
    batches: Iterable,
    optimizer: torch.optim.Optimizer,
    *,
    device: torch.device,
    amp_dtype: torch.dtype | None,
    grad_clip_norm: float,
    max_steps: int = MAX_STEPS,
    max_seconds: float = MAX_SECONDS,
) -> RangeTest:
    """Run the range test and return its curve and pick; leaves model and optimizer as found."""
    saved_model = copy.deepcopy(model.module.state_dict())
    saved_optimizer = copy.deepcopy(optimizer.state_dict())
    scaler = torch.amp.GradScaler(device.type, enabled=accelerator.needs_loss_scaling(amp_dtype))
    started = time.monotonic()
    rates, smoothed, average, best = [], [], 0.0, math.inf
    model.module.train()
    for step, ((xb, yb), _records) in zip(range(max_steps), _forever(batches), strict=False):
        lr = START * (END / START) ** (step / max(1, max_steps - 1))
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = engine.step_once(
            model, (xb, yb), optimizer, scaler, device, grad_clip_norm, amp_dtype
        )
        value = collectives.mean(loss.item())
        out_of_time = collectives.mean(float(time.monotonic() - started > max_seconds)) > 0
        if not math.isfinite(value):
            break
        average = SMOOTHING * average + (1 - SMOOTHING) * value
        current = average / (1 - SMOOTHING ** (step + 1))
        rates.append(lr)
        smoothed.append(current)
        best = min(best, current)
        if current > DIVERGED * best or out_of_time:
            break
    model.module.load_state_dict(saved_model)
    optimizer.load_state_dict(saved_optimizer)
    optimizer.zero_grad(set_to_none=True)
    seconds = time.monotonic() - started
    return RangeTest(rates, smoothed, collectives.broadcast(suggest(rates, smoothed)), seconds)


def suggest(rates: list[float], losses: list[float]) -> float | None:
    """fastai's ``valley``; None when the curve is too short to read."""
    skip = len(losses) // 10
    lrs, values = rates[skip:-5], losses[skip:-5]
    if len(values) < 5:
        return None
    longest = [1] * len(values)
    start = end = 0
    for i in range(1, len(values)):
        for j in range(i):
            if values[i] < values[j] and longest[i] < longest[j] + 1:
                longest[i] = longest[j] + 1
        if longest[end] < longest[i]:
            end = i
            start = end - longest[end]
    third = (end - start) / 3
    return lrs[start + int(third) + int(third / 2)]


def plot(result: RangeTest, folder: Path) -> Path:
    """Loss against learning rate (log scale), the pick marked; written as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(6, 4))
    axes.plot(result.learning_rates, result.losses)
    if result.suggestion is not None:
        axes.axvline(
            result.suggestion, color="red", linestyle="--", label=f"{result.suggestion:.2e}"
        )
        axes.legend()
    axes.set(xscale="log", xlabel="learning rate", ylabel="smoothed training loss")
    axes.set_title("learning-rate range test")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / PLOT_NAME
    figure.savefig(path, dpi=100, bbox_inches="tight")
    pyplot.close(figure)
    return path


def apply(
    env: TrainingEnvironment,
    world: engine.World,
    model: DetectionModel,
    train_batches: Iterable,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    amp_dtype: torch.dtype | None,
) -> None:
    """The range test, then its pick (or the recipe's rate when too short to read) set on
    ``optimizer``; the caller builds the schedule on it."""
    log.info("Finding the learning rate (range test, at most %d steps)", MAX_STEPS)
    found = find(
        model,
        train_batches,
        optimizer,
        device=device,
        amp_dtype=amp_dtype,
        grad_clip_norm=env.hyperparameters.grad_clip_norm,
    )
    hp = env.hyperparameters
    lr = found.suggestion
    if lr is None:
        lr = recipes.recipe(hp.model, hp.pretrained).learning_rate_for(hp.batch_size) * world.size
        log.warning(
            "learning_rate=auto: the range test took %d steps in %.1f s, too few to read; "
            "keeping the recipe's learning rate %.3g",
            len(found.losses),
            found.seconds,
            lr,
        )
    else:
        log.info(
            "learning_rate=auto: %.3g (fastai's valley rule, %d steps in %.1f s, "
            "effective batch %d)",
            lr,
            len(found.losses),
            found.seconds,
            hp.batch_size * world.size,
        )
    for group in optimizer.param_groups:
        group["lr"] = lr
        group.pop("initial_lr", None)  # the schedule built next starts from this lr
    if world.is_main:
        log.info("range test plot: %s", plot(found, env.output_data_dir))

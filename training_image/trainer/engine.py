"""The training loop: one epoch of SGD steps, one validation pass with COCO mAP.

Written for one process today and several tomorrow: ``World`` says which rank
this is, ``EpochSampler`` gives each rank its share of a seeded order, and only
the main rank writes files (see main.py).
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Sampler

from contract.hyperparameters import Hyperparameters
from trainer.errors import TrainingDiverged
from trainer.model import DetectionModel, Predictions

log = logging.getLogger(__name__)

MOMENTUM = 0.9
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


def optimizer(model: DetectionModel, hp: Hyperparameters) -> torch.optim.Optimizer:
    params = [p for p in model.module.parameters() if p.requires_grad]
    return torch.optim.SGD(
        params, lr=hp.learning_rate, momentum=MOMENTUM, weight_decay=hp.weight_decay
    )


def schedule(
    opt: torch.optim.Optimizer, steps_per_epoch: int, epochs: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up, then cosine decay to zero, stepped once per batch."""
    total = max(1, steps_per_epoch * epochs)
    warmup = min(WARMUP_STEPS, steps_per_epoch, total - 1)

    def factor(step: int) -> float:
        if step < warmup:
            return 0.001 + (1 - 0.001) * step / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


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
) -> EpochResult:
    """SGD over ``batches``; returns early (completed=False) once ``stop`` is set."""
    model.module.train()
    (total, count), step = running, first_step
    last_log = time.monotonic()
    for (xb, yb), _records in batches:
        if stop.is_set():
            return EpochResult((total, count), step, completed=False)
        with torch.autocast(device.type, enabled=scaler.is_enabled()):
            loss = model.losses((xb, yb), device)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if grad_clip_norm > 0:
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(model.module.parameters(), grad_clip_norm)
        scaler.step(opt)
        scaler.update()
        scheduler.step()
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


def _truth(record) -> tuple[np.ndarray, np.ndarray]:
    boxes = np.array([b.xyxy for b in record.detection.bboxes], dtype=np.float32).reshape(-1, 4)
    return boxes, np.asarray(record.detection.label_ids, dtype=np.int64)


def coco_map(truths: list, predictions: Predictions, num_classes: int) -> tuple[float, float]:
    """COCO mAP@[.5:.95] and mAP@.5 (pycocotools) of xyxy boxes; 0.0 when nothing was found."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, annotations, detections = [], [], []
    for image_id, ((gt_boxes, gt_labels), (boxes, scores, labels)) in enumerate(
        zip(truths, predictions, strict=True)
    ):
        images.append({"id": image_id})
        for box, label in zip(gt_boxes.tolist(), gt_labels.tolist(), strict=True):
            w, h = box[2] - box[0], box[3] - box[1]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": label,
                    "bbox": [box[0], box[1], w, h],
                    "area": w * h,
                    "iscrowd": 0,
                }
            )
        for box, score, label in zip(boxes.tolist(), scores.tolist(), labels.tolist(), strict=True):
            detections.append(
                {
                    "image_id": image_id,
                    "category_id": int(label),
                    "score": score,
                    "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]],
                }
            )
    if not annotations or not detections:
        return 0.0, 0.0
    with contextlib.redirect_stdout(io.StringIO()):
        ground = COCO()
        ground.dataset = {
            "images": images,
            "annotations": annotations,
            "categories": [{"id": i} for i in range(1, num_classes + 1)],
        }
        ground.createIndex()
        evaluation = COCOeval(ground, ground.loadRes(detections), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return max(float(evaluation.stats[0]), 0.0), max(float(evaluation.stats[1]), 0.0)

"""Checkpoints in the job's checkpoint folder (/opt/ml/checkpoints unless CheckpointConfig says).

SageMaker copies the folder's S3 contents in before the job starts and syncs
what is written while it runs (deletions too), so a restarted spot job finds
the latest checkpoint here. Files are written to a hidden temporary name and
renamed (``os.replace``), so a reader never sees half a file; a file that does
not load (corrupt, truncated, another model) is skipped with a warning.

``Checkpointer`` is the training loop's side of it: rank 0 picks the checkpoint every rank
resumes from and alone writes them; ``CheckpointOnDataError`` saves one before an image that
fails to decode mid-epoch ends the job, so a rerun (with the image fixed or skipped) resumes
there.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from trainer import collectives
from trainer.engine import World
from trainer.errors import DataError

if TYPE_CHECKING:
    from trainer.engine import WeightAverage
    from trainer.model import DetectionModel

log = logging.getLogger(__name__)

FORMAT = 1
KEEP = 2
_NAME = re.compile(r"^checkpoint-e(\d{4,})-s(\d{6,})\.pt$")


@dataclass(frozen=True)
class Identity:
    """What must match for a checkpoint to be resumed into this run."""

    model: str
    backbone: str
    image_size: int
    class_names: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "backbone": self.backbone,
            "image_size": self.image_size,
            "class_names": list(self.class_names),
        }


def _name(epoch: int, step: int) -> str:
    return f"checkpoint-e{epoch:04d}-s{step:06d}.pt"


def _existing(folder: Path) -> list[tuple[int, int, Path]]:
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _NAME.match(path.name)
        if match:
            found.append((int(match[1]), int(match[2]), path))
    return sorted(found, reverse=True)


def save(folder: Path, identity: Identity, *, epoch: int, step: int, state: dict[str, Any]) -> Path:
    """Write a checkpoint: ``epoch`` is the epoch in progress, ``step`` the batches done in it."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / _name(epoch, step)
    temporary = folder / f".{target.name}.tmp"
    payload = {
        "format": FORMAT,
        "identity": identity.as_dict(),
        "epoch": epoch,
        "step": step,
        **state,
    }
    torch.save(payload, temporary)
    os.replace(temporary, target)
    for _, _, old in _existing(folder)[KEEP:]:
        old.unlink(missing_ok=True)
    log.info("checkpoint saved: %s", target)
    return target


def latest(folder: Path, identity: Identity) -> dict[str, Any] | None:
    """The newest checkpoint of this run's model that loads, or None."""
    for _, _, path in _existing(folder):
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # any unreadable file is skipped, whatever the reason
            log.warning("skipping checkpoint %s: it does not load (%s)", path.name, error)
            continue
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            log.warning("skipping checkpoint %s: unknown format", path.name)
            continue
        if payload.get("identity") != identity.as_dict():
            log.warning(
                "skipping checkpoint %s: it is for %s, this run is %s",
                path.name,
                payload.get("identity"),
                identity.as_dict(),
            )
            continue
        log.info(
            "resuming from %s (epoch %d, step %d)", path.name, payload["epoch"] + 1, payload["step"]
        )
        return payload
    return None


@dataclass
class Checkpointer:
    """Rank 0 picks the checkpoint every rank resumes from, and only rank 0 writes them.

    Not frozen: ``learning_rate=auto`` replaces the scheduler after the range test.
    """

    folder: Path
    identity: Identity
    world: World
    model: DetectionModel
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    ema: WeightAverage | None

    def resume(self) -> dict[str, Any]:
        """Restore the latest usable checkpoint into the model and optimizer; {} if none."""
        found = latest(self.folder, self.identity) if self.world.is_main else None
        resumed = collectives.broadcast(found) or {}
        if resumed:
            self.model.module.load_state_dict(resumed["model_state"])
            self.optimizer.load_state_dict(resumed["optimizer"])
            self.scheduler.load_state_dict(resumed["scheduler"])
            self.scaler.load_state_dict(resumed["scaler"])
            if self.ema is not None and "ema" in resumed:
                self.ema.load_state_dict(resumed["ema"])
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
            if self.ema is not None:
                state["ema"] = self.ema.state_dict()
            save(self.folder, self.identity, epoch=epoch, step=step, state=state)
        collectives.barrier()

    def save_before_failing(
        self,
        epoch: int,
        step: int,
        history: list[dict],
        running: tuple[float, int] = (0.0, 0),
    ) -> None:
        """A checkpoint before a DataError ends the job, so a rerun resumes there. One process
        only: in a data-parallel job the other ranks are not at the save's barrier (the last
        checkpoint stays)."""
        if self.world.size == 1:
            self.save(epoch, step, running, history)
            log.info("checkpoint saved at epoch %d, step %d, before failing", epoch + 1, step)


class CheckpointOnDataError:
    """Batches that call ``save(batches handed out this pass)`` before a DataError propagates."""

    def __init__(self, batches: Iterable, save: Callable[[int], None]) -> None:
        self.batches, self.save = batches, save

    def __iter__(self) -> Iterator:
        count = 0
        try:
            for batch in self.batches:
                yield batch
                count += 1  # the step on the batch just handed out is done
        except DataError:
            self.save(count)
            raise

    def __len__(self) -> int:
        return len(self.batches)

"""Checkpoints in the job's checkpoint folder (/opt/ml/checkpoints unless CheckpointConfig says).

SageMaker copies the folder's S3 contents in before the job starts and syncs
what is written while it runs (deletions too), so a restarted spot job finds
the latest checkpoint here. Files are written to a hidden temporary name and
renamed (``os.replace``), so a reader never sees half a file; a file that does
not load (corrupt, truncated, another model) is skipped with a warning.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

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

"""The best epoch: which one the model is, its weights kept beside the checkpoints, early stopping.

The score is ``select_metric`` of each epoch's metrics row (higher or lower is better as
contract/metrics.py says). The best epoch's weights are written to ``best-model.pt`` in the
checkpoint folder whenever an epoch improves, so they survive a restart: on resume, the
history in the checkpoint says which epoch was best, and the file must hold that epoch.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from contract.metrics import SELECTABLE

log = logging.getLogger(__name__)

BEST_FILE = "best-model.pt"


@dataclass
class Selection:
    """Tracks the best epoch by one metric; ``patience`` > 0 turns on early stopping."""

    metric: str
    patience: int = 0
    best_epoch: int = 0  # 0: no epoch scored yet
    best_score: float = math.nan
    since_best: int = 0

    @property
    def higher_is_better(self) -> bool:
        return SELECTABLE[self.metric]

    def _better(self, score: float) -> bool:
        if not math.isfinite(score):
            return False
        if self.best_epoch == 0:
            return True
        return score > self.best_score if self.higher_is_better else score < self.best_score

    def update(self, row: Mapping[str, float]) -> bool:
        """Count one epoch's metrics row; True when it is the new best."""
        score = float(row[self.metric])
        if self._better(score):
            self.best_epoch, self.best_score, self.since_best = int(row["epoch"]), score, 0
            return True
        self.since_best += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.patience > 0 and self.best_epoch > 0 and self.since_best >= self.patience

    def stop_reason(self) -> str:
        return (
            f"early stopping: {self.metric} has not improved for {self.since_best} epochs "
            f"(early_stopping_patience={self.patience}); the best was {self.best_score:.6g} "
            f"at epoch {self.best_epoch}"
        )

    def summary(self, history: Sequence[Mapping[str, float]]) -> dict[str, Any]:
        """What config.json says about the model's epoch."""
        best = next((r for r in history if int(r["epoch"]) == self.best_epoch), {})
        return {
            "metric": self.metric,
            "higher_is_better": self.higher_is_better,
            "epoch": self.best_epoch,
            "score": self.best_score if self.best_epoch else None,
            "metrics": dict(best),
            "early_stopped": self.should_stop,
        }


def replay(metric: str, patience: int, history: Sequence[Mapping[str, float]]) -> Selection:
    """The selection state after the epochs of a resumed history."""
    selection = Selection(metric, patience)
    for row in history:
        selection.update(row)
    return selection


def save_best(folder: Path, epoch: int, score: float, model_state: Mapping[str, Any]) -> None:
    """Write the best weights so far (atomic: a reader never sees half a file)."""
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f".{BEST_FILE}.tmp"
    torch.save({"epoch": epoch, "score": score, "model_state": dict(model_state)}, temporary)
    os.replace(temporary, folder / BEST_FILE)
    log.info("epoch %d is the best so far (%.6g): weights kept in %s", epoch, score, BEST_FILE)


def load_best(folder: Path, selection: Selection) -> dict[str, Any] | None:
    """The best epoch's weights, if ``best-model.pt`` holds the epoch the selection names."""
    path = folder / BEST_FILE
    if selection.best_epoch == 0 or not path.is_file():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # unreadable, whatever the reason: treated as absent
        log.warning("%s does not load (%s)", BEST_FILE, error)
        return None
    if not isinstance(payload, dict) or payload.get("epoch") != selection.best_epoch:
        found = payload.get("epoch") if isinstance(payload, dict) else None
        log.warning(
            "%s holds epoch %s, not the best epoch %d", BEST_FILE, found, selection.best_epoch
        )
        return None
    return payload["model_state"]


def resumed(metric: str, patience: int, history: list[dict], folder: Path) -> Selection:
    """The best epoch so far (from a resumed history), whose weights must be in ``folder``.

    Rank 0 decides (it alone writes ``folder``) and every rank gets its answer, so all ranks
    stop early together.
    """
    best = replay(metric, patience, history)
    if best.best_epoch and load_best(folder, best) is None:
        log.warning(
            "the weights of the best epoch so far (%d) are not in %s: the model is chosen "
            "among the epochs from %d on",
            best.best_epoch,
            folder,
            len(history) + 1,
        )
        best = Selection(metric, patience)
    return best

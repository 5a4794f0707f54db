"""What a model family gives the trainer: one subclass per family, the same questions for each."""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import nn

from contract import families

Predictions = list[tuple[np.ndarray, np.ndarray, np.ndarray]]  # per image: boxes, scores, labels


class ModelFamily:
    """A family's code; its facts (backbones, image-size rule) are the contract's ``facts``."""

    name: str

    @property
    def facts(self) -> families.Family:
        return families.family(self.name)

    def model_type(self) -> ModuleType:
        """IceVision's model type (dataloaders, batch building, prediction conversion)."""
        raise NotImplementedError

    def build(
        self, backbone: str, num_classes: int, image_size: int, pretrained: bool
    ) -> nn.Module:
        """The bare IceVision model; ``num_classes`` counts the background."""
        raise NotImplementedError

    def targets(self, records: Sequence, *, train: bool) -> Any:
        """A batch's targets (from ``transforms.Sample``s) in the form the model's forward pass
        takes."""
        raise NotImplementedError

    def inputs(self, images: torch.Tensor) -> Any:
        """A normalized (B, 3, H, W) batch in the form the model's forward pass takes."""
        raise NotImplementedError

    def total_loss(self, out: Any) -> torch.Tensor:
        """The summed loss from a training-mode forward pass's output."""
        raise NotImplementedError

    def validate(self, module: nn.Module, images: Any, targets: Any) -> tuple[torch.Tensor, Any]:
        """Validation loss and raw detections of one batch."""
        raise NotImplementedError

    def detections(self, raw: Any) -> Predictions:
        """A batch's raw detections as arrays per image (one device-to-host copy)."""
        raise NotImplementedError

    def exported(self, module: nn.Module) -> nn.Module:
        """The module whose state dict the artifact ships."""
        return module

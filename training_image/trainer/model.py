"""IceVision detection models: creation, one training step's losses, and validation outputs.

The same for every family: what differs per family is its entry in trainer/families/.

Pretrained weights are never downloaded at run time: the image bakes them into
TORCH_HOME and the Hugging Face cache at build time (fetch_weights.py), and the
trainer runs with HF_HUB_OFFLINE=1; a missing weight file is a clear ConfigError.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import torch
from torch import nn

from contract.hyperparameters import Hyperparameters
from trainer import batches, families
from trainer.errors import ConfigError
from trainer.families import ModelFamily, Predictions

log = logging.getLogger(__name__)


def model_type(name: str) -> ModuleType:
    """The IceVision model type (dataloaders, batch building, prediction conversion)."""
    return families.get(name).model_type()


def build_module(
    name: str, backbone: str, num_classes: int, image_size: int, pretrained: bool
) -> nn.Module:
    """The bare IceVision model; ``num_classes`` counts the background."""
    family = families.get(name)
    try:
        return family.build(backbone, num_classes, image_size, pretrained)
    except (OSError, RuntimeError) as error:
        if not pretrained:
            raise
        raise ConfigError(
            f"pretrained weights for {name}/{backbone} are not in this image ({error}); "
            "use pretrained=false or rebuild the image (fetch_weights.py)"
        ) from None


@dataclass
class DetectionModel:
    """A model with what the engine needs from it, the same for every family."""

    name: str
    backbone: str
    image_size: int
    class_names: tuple[str, ...]
    module: nn.Module
    forward_module: nn.Module | None = None  # data-parallel: the DDP wrapper around ``module``
    channels_last: bool = False  # NHWC weights and images (a GPU lever; see docs/performance.md)

    @property
    def family(self) -> ModelFamily:
        return families.get(self.name)

    @property
    def kind(self) -> ModuleType:
        return self.family.model_type()

    def to(self, device: torch.device) -> DetectionModel:
        memory_format = torch.channels_last if self.channels_last else torch.preserve_format
        self.module.to(device, memory_format=memory_format)
        return self

    def losses(self, batch: Any, device: torch.device) -> torch.Tensor:
        """Training-mode forward pass: the summed loss of one batch."""
        xb, yb = batches.to_device(batch, device, self.name, channels_last=self.channels_last)
        forward = self.module if self.forward_module is None else self.forward_module
        return self.family.total_loss(forward(xb, yb))

    @torch.no_grad()
    def validate(
        self, batch: Any, records: list, device: torch.device
    ) -> tuple[float, Predictions]:
        """Validation loss and raw detections (in the transformed image's pixels) of one batch."""
        xb, yb = batches.to_device(batch, device, self.name, channels_last=self.channels_last)
        loss, raw = self.family.validate(self.module, xb, yb)
        return float(loss), self.family.detections(raw)

    def weights(self) -> dict[str, torch.Tensor]:
        """The state dict the artifact ships (EfficientDet without its training bench)."""
        module = self.family.exported(self.module)
        return {k: v.detach().cpu() for k, v in module.state_dict().items()}


def detections(name: str, raw: Any) -> Predictions:
    """A batch's raw detections as arrays per image: one device-to-host copy, no per-box objects.

    The same numbers as IceVision's ``convert_raw_predictions`` (threshold 0).
    """
    return families.get(name).detections(raw)


def create(hp: Hyperparameters, class_names: tuple[str, ...]) -> DetectionModel:
    log.info(
        "model %s, backbone %s, %d classes, image size %d, pretrained=%s",
        hp.model,
        hp.backbone,
        len(class_names),
        hp.image_size,
        hp.pretrained,
    )
    module = build_module(hp.model, hp.backbone, len(class_names) + 1, hp.image_size, hp.pretrained)
    return DetectionModel(hp.model, hp.backbone, hp.image_size, class_names, module)

"""Faster R-CNN and RetinaNet: torchvision's detectors, through IceVision."""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

import torch
from torch import nn

from trainer import icevision_patches
from trainer.families.base import ModelFamily, Predictions


class TorchvisionFamily(ModelFamily):
    """Targets ``dict(boxes=xyxy, labels=...)`` per image; images as a list; a dict of losses."""

    def build(
        self, backbone: str, num_classes: int, image_size: int, pretrained: bool
    ) -> nn.Module:
        kind = self.model_type()
        config = getattr(kind.backbones, backbone)
        return kind.model(backbone=config(pretrained=pretrained), num_classes=num_classes)

    def targets(self, records: Sequence, *, train: bool) -> list[dict[str, torch.Tensor]]:
        return [
            {
                "labels": torch.as_tensor(sample.labels, dtype=torch.int64),
                "boxes": torch.as_tensor(sample.boxes, dtype=torch.float32).reshape(-1, 4),
            }
            for sample in records
        ]

    def inputs(self, images: torch.Tensor) -> list[torch.Tensor]:
        return list(images.unbind(0))

    def total_loss(self, out: Any) -> torch.Tensor:
        return sum(out.values())

    def validate(self, module: nn.Module, images: Any, targets: Any) -> tuple[torch.Tensor, Any]:
        _train_with_frozen_norm(module)  # the losses exist in training mode only
        loss = sum(module(images, targets).values())
        module.eval()
        return loss, module(images)

    def detections(self, raw: Any) -> Predictions:
        """The same numbers as IceVision's ``convert_raw_predictions`` (threshold 0), without its
        ``BBox`` per detection and a device sync per box."""
        return [
            (
                p["boxes"].detach().float().cpu().numpy().reshape(-1, 4),
                p["scores"].detach().float().cpu().numpy(),
                p["labels"].detach().cpu().numpy(),
            )
            for p in raw
        ]


class FasterRCNN(TorchvisionFamily):
    name = "faster_rcnn"

    def model_type(self) -> ModuleType:
        icevision_patches.apply()
        from icevision.models.torchvision import faster_rcnn

        return faster_rcnn


class RetinaNet(TorchvisionFamily):
    name = "retinanet"

    def model_type(self) -> ModuleType:
        icevision_patches.apply()
        from icevision.models.torchvision import retinanet

        return retinanet


def _train_with_frozen_norm(module: nn.Module) -> None:
    module.train()
    for layer in module.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            layer.eval()

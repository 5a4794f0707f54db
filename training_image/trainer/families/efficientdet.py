"""EfficientDet: Ross Wightman's effdet, built by efficientdet_bench.py (the shipped detector's
builder too), trained through IceVision's dataloaders."""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import nn

from trainer import icevision_patches
from trainer.families.base import ModelFamily, Predictions
from trainer.families.efficientdet_bench import build_bench


class EfficientDet(ModelFamily):
    """Targets ``dict(bbox=[yxyx], cls=[...])``; images as one tensor; the loss in ``out["loss"]``;
    the artifact ships the model without its training bench."""

    name = "efficientdet"

    def model_type(self) -> ModuleType:
        icevision_patches.apply()
        from icevision.models.ross import efficientdet

        return efficientdet

    def build(
        self, backbone: str, num_classes: int, image_size: int, pretrained: bool
    ) -> nn.Module:
        self.model_type()  # IceVision's mends, before effdet loads through it
        return build_bench(backbone, num_classes, image_size, task="train", pretrained=pretrained)

    def targets(self, records: Sequence, *, train: bool) -> dict[str, Any]:
        boxes, classes = [], []
        for sample in records:
            present = len(sample.labels) > 0
            yxyx = sample.boxes[:, [1, 0, 3, 2]] if present else np.zeros((1, 4), np.float32)
            boxes.append(torch.as_tensor(yxyx, dtype=torch.float32))
            classes.append(torch.as_tensor(sample.labels if present else [0], dtype=torch.float32))
        targets = {"bbox": boxes, "cls": classes}
        return targets if train else {"img_size": None, "img_scale": None, **targets}

    def inputs(self, images: torch.Tensor) -> torch.Tensor:
        return images

    def total_loss(self, out: Any) -> torch.Tensor:
        return out["loss"]

    def validate(self, module: nn.Module, images: Any, targets: Any) -> tuple[torch.Tensor, Any]:
        module.eval()
        out = module(images, targets)
        return out["loss"], out["detections"]

    def detections(self, raw: Any) -> Predictions:
        rows = (
            raw.detach().float().cpu().numpy()
        )  # (batch, detections, [x1, y1, x2, y2, score, class])
        return [(r[:, :4].copy(), r[:, 4].copy(), r[:, 5].astype(int)) for r in rows]

    def exported(self, module: nn.Module) -> nn.Module:
        return module.model

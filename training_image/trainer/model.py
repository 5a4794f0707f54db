"""IceVision detection models: creation, one training step's losses, and validation outputs.

Pretrained weights are never downloaded at run time: the image bakes them into
TORCH_HOME and the Hugging Face cache at build time (fetch_weights.py), and the
trainer runs with HF_HUB_OFFLINE=1; a missing weight file is a clear ConfigError.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import nn

from contract.hyperparameters import Hyperparameters
from trainer import compat
from trainer.errors import ConfigError

log = logging.getLogger(__name__)

Predictions = list[tuple[np.ndarray, np.ndarray, np.ndarray]]  # per image: boxes, scores, labels


def model_type(name: str) -> ModuleType:
    """The IceVision model type (dataloaders, batch building, prediction conversion)."""
    compat.apply()
    if name == "efficientdet":
        from icevision.models.ross import efficientdet

        return efficientdet
    if name == "retinanet":
        from icevision.models.torchvision import retinanet

        return retinanet
    from icevision.models.torchvision import faster_rcnn

    return faster_rcnn


def build_module(
    name: str, backbone: str, num_classes: int, image_size: int, pretrained: bool
) -> nn.Module:
    """The bare IceVision model; ``num_classes`` counts the background."""
    kind = model_type(name)
    config = getattr(kind.backbones, backbone)
    try:
        if name == "efficientdet":
            return kind.model(
                backbone=config(pretrained=pretrained),
                num_classes=num_classes,
                img_size=image_size,
                pretrained_backbone=False,  # the whole COCO model loads when pretrained
            )
        return kind.model(backbone=config(pretrained=pretrained), num_classes=num_classes)
    except (OSError, RuntimeError) as error:
        if not pretrained:
            raise
        raise ConfigError(
            f"pretrained weights for {name}/{backbone} are not in this image ({error}); "
            "use pretrained=false or rebuild the image (fetch_weights.py)"
        ) from None


def _to(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=True)
    if isinstance(value, dict):
        return {k: _to(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to(v, device) for v in value)
    return value


@dataclass
class DetectionModel:
    """A model with what the engine needs from it, the same for every family."""

    name: str
    backbone: str
    image_size: int
    class_names: tuple[str, ...]
    module: nn.Module
    forward_module: nn.Module | None = None  # data-parallel: the DDP wrapper around ``module``

    @property
    def kind(self) -> ModuleType:
        return model_type(self.name)

    def to(self, device: torch.device) -> DetectionModel:
        self.module.to(device)
        return self

    def losses(self, batch: Any, device: torch.device) -> torch.Tensor:
        """Training-mode forward pass: the summed loss of one batch."""
        xb, yb = _to(batch, device)
        forward = self.module if self.forward_module is None else self.forward_module
        out = forward(xb, yb)
        return out["loss"] if self.name == "efficientdet" else sum(out.values())

    @torch.no_grad()
    def validate(
        self, batch: Any, records: list, device: torch.device
    ) -> tuple[float, Predictions]:
        """Validation loss and raw detections (in the transformed image's pixels) of one batch."""
        xb, yb = _to(batch, device)
        if self.name == "efficientdet":
            self.module.eval()
            out = self.module(xb, yb)
            loss, raw = out["loss"], out["detections"]
        else:
            _train_with_frozen_norm(self.module)
            loss = sum(self.module(xb, yb).values())
            self.module.eval()
            raw = self.module(xb)
        converted = self.kind.convert_raw_predictions(
            batch=(xb, yb), raw_preds=raw, records=records, detection_threshold=0.0
        )
        return float(loss), [_arrays(p.detection) for p in converted]

    def weights(self) -> dict[str, torch.Tensor]:
        """The state dict the artifact ships (EfficientDet without its training bench)."""
        module = self.module.model if self.name == "efficientdet" else self.module
        return {k: v.detach().cpu() for k, v in module.state_dict().items()}


def _train_with_frozen_norm(module: nn.Module) -> None:
    module.train()
    for layer in module.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            layer.eval()


def _arrays(detection: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    boxes = np.array([b.xyxy for b in detection.bboxes], dtype=np.float32).reshape(-1, 4)
    return boxes, np.asarray(detection.scores, dtype=np.float32), np.asarray(detection.label_ids)


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

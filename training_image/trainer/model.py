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
from trainer import batches, compat
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
            bench = kind.model(
                backbone=config(pretrained=pretrained),
                num_classes=num_classes,
                img_size=image_size,
                pretrained_backbone=False,  # the whole COCO model loads when pretrained
            )
            return cap_detection_points(bench)
        return kind.model(backbone=config(pretrained=pretrained), num_classes=num_classes)
    except (OSError, RuntimeError) as error:
        if not pretrained:
            raise
        raise ConfigError(
            f"pretrained weights for {name}/{backbone} are not in this image ({error}); "
            "use pretrained=false or rebuild the image (fetch_weights.py)"
        ) from None


def cap_detection_points(bench: nn.Module) -> nn.Module:
    """EfficientDet's top-k takes ``max_detection_points`` (5000) of anchors x classes scores;
    small images with few classes have fewer (128 px, 1 class: 3069), and top-k fails."""
    scores = bench.anchors.boxes.shape[0] * bench.num_classes
    bench.max_detection_points = min(bench.max_detection_points, scores)
    return bench


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
    def kind(self) -> ModuleType:
        return model_type(self.name)

    def to(self, device: torch.device) -> DetectionModel:
        memory_format = torch.channels_last if self.channels_last else torch.preserve_format
        self.module.to(device, memory_format=memory_format)
        return self

    def losses(self, batch: Any, device: torch.device) -> torch.Tensor:
        """Training-mode forward pass: the summed loss of one batch."""
        xb, yb = batches.to_device(batch, device, self.name, channels_last=self.channels_last)
        forward = self.module if self.forward_module is None else self.forward_module
        out = forward(xb, yb)
        return out["loss"] if self.name == "efficientdet" else sum(out.values())

    @torch.no_grad()
    def validate(
        self, batch: Any, records: list, device: torch.device
    ) -> tuple[float, Predictions]:
        """Validation loss and raw detections (in the transformed image's pixels) of one batch."""
        xb, yb = batches.to_device(batch, device, self.name, channels_last=self.channels_last)
        if self.name == "efficientdet":
            self.module.eval()
            out = self.module(xb, yb)
            loss, raw = out["loss"], out["detections"]
        else:
            _train_with_frozen_norm(self.module)
            loss = sum(self.module(xb, yb).values())
            self.module.eval()
            raw = self.module(xb)
        return float(loss), detections(self.name, raw)

    def weights(self) -> dict[str, torch.Tensor]:
        """The state dict the artifact ships (EfficientDet without its training bench)."""
        module = self.module.model if self.name == "efficientdet" else self.module
        return {k: v.detach().cpu() for k, v in module.state_dict().items()}


def _train_with_frozen_norm(module: nn.Module) -> None:
    module.train()
    for layer in module.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            layer.eval()


def detections(name: str, raw: Any) -> Predictions:
    """A batch's raw detections as arrays per image: one device-to-host copy, no per-box objects.

    The same numbers as IceVision's ``convert_raw_predictions`` (threshold 0), without its
    ``BBox`` per detection (and, for torchvision's models, a device sync per box).
    """
    if name == "efficientdet":  # (batch, detections, [x1, y1, x2, y2, score, class])
        rows = raw.detach().float().cpu().numpy()
        return [(r[:, :4].copy(), r[:, 4].copy(), r[:, 5].astype(int)) for r in rows]
    return [
        (
            p["boxes"].detach().float().cpu().numpy().reshape(-1, 4),
            p["scores"].detach().float().cpu().numpy(),
            p["labels"].detach().cpu().numpy(),
        )
        for p in raw
    ]


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

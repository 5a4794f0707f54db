"""The model families the trainer trains: one module per family, one registry.

Each entry answers the same questions (trainer/families/base.py): IceVision's model type,
how to build the model, a batch's targets and inputs, the training loss, validation and
the exported weights. The facts every layer shares (backbones, image-size rule) are the
contract's (contract/families.py), under the same names; a test keeps the two in step.
"""

from __future__ import annotations

from contract.families import FAMILIES, UnknownFamily
from trainer.families.base import ModelFamily, Predictions
from trainer.families.efficientdet import EfficientDet
from trainer.families.torchvision_models import FasterRCNN, RetinaNet

REGISTRY: dict[str, ModelFamily] = {f.name: f for f in (FasterRCNN(), RetinaNet(), EfficientDet())}


def get(name: str) -> ModelFamily:
    """The family called ``name``; UnknownFamily (a ValueError) naming the known ones otherwise."""
    if name not in REGISTRY:
        raise UnknownFamily(f"model family {name!r} is unknown; allowed: {', '.join(FAMILIES)}")
    return REGISTRY[name]


__all__ = ["REGISTRY", "ModelFamily", "Predictions", "UnknownFamily", "get"]

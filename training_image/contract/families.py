"""The model families: what every layer must agree on about each one, defined once.

Pure data (the launcher validates hyperparameters with it): a family's name, its
backbones, the default backbone and the image-size rule. The code of each family
(building the model, its batches, losses, validation and export) lives in the trainer's
registry, trainer/families/, under the same names; the standalone loader that ships
with a model keeps its own small table (trainer/standalone_detector.py).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    name: str
    backbones: tuple[str, ...]
    default_backbone: str
    image_size_multiple: int  # the image side must be a multiple of the pyramid's total stride


_RESNET_FPN = ("resnet18_fpn", "resnet34_fpn", "resnet50_fpn", "resnet101_fpn")

FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family("faster_rcnn", _RESNET_FPN, "resnet50_fpn", 32),
        Family("retinanet", _RESNET_FPN, "resnet50_fpn", 32),
        # EfficientDet's feature pyramid halves the image 7 times.
        Family(
            "efficientdet",
            ("tf_lite0", "tf_lite1", "tf_lite2", "tf_d0", "tf_d1", "tf_d2"),
            "tf_lite0",
            128,
        ),
    )
}


class UnknownFamily(ValueError):
    """A model name that is not one of ``FAMILIES``; the message names the known ones."""


def family(name: str) -> Family:
    """The family called ``name``; UnknownFamily naming the known ones otherwise."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise UnknownFamily(
            f"model family {name!r} is unknown; allowed: {', '.join(FAMILIES)}"
        ) from None

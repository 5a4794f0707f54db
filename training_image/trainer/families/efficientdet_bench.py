"""EfficientDet's model from effdet alone: the trainer trains it (trainer/families/efficientdet.py)
and the shipped ``detector.py`` carries this module inlined, so both build the same network.

It imports nothing from this repository, nor IceVision (whose ``efficientdet.model`` does the
same: effdet's config by name, the image size, ``create_model_from_config``).
"""

from __future__ import annotations

import torch

# The backbone names (contract/families.py, IceVision's) and effdet's model names.
_EFFDET_PREFIXES = {"tf_lite": "tf_efficientdet_lite", "tf_d": "tf_efficientdet_d"}


def effdet_model_name(backbone: str) -> str:
    """effdet's name for ``backbone``: ``tf_lite0`` is ``tf_efficientdet_lite0``."""
    for prefix, name in _EFFDET_PREFIXES.items():
        if backbone.startswith(prefix) and backbone.removeprefix(prefix).isdigit():
            return name + backbone.removeprefix(prefix)
    allowed = ", ".join(f"{prefix}<n>" for prefix in _EFFDET_PREFIXES)
    raise ValueError(f"EfficientDet backbone {backbone!r} is unknown; allowed: {allowed}")


def build_bench(
    backbone: str, num_classes: int, image_size: int, *, task: str, pretrained: bool
) -> torch.nn.Module:
    """effdet's bench (``task``: ``train`` with its anchor labeler, or ``predict``) around the
    model; ``num_classes`` counts the background, as everywhere in the trainer."""
    from effdet import create_model_from_config, get_efficientdet_config

    config = get_efficientdet_config(effdet_model_name(backbone))
    config.image_size = (image_size, image_size)
    bench = create_model_from_config(
        config,
        bench_task=task,
        bench_labeler=task == "train",
        num_classes=num_classes - 1,
        pretrained=pretrained,  # the whole COCO model, when pretrained
        pretrained_backbone=False,
    )
    return cap_detection_points(bench)


def cap_detection_points(bench: torch.nn.Module) -> torch.nn.Module:
    """EfficientDet's top-k takes ``max_detection_points`` (5000) of anchors x classes scores;
    small images with few classes have fewer (128 px, 1 class: 3069), and top-k fails."""
    scores = bench.anchors.boxes.shape[0] * bench.num_classes
    bench.max_detection_points = min(bench.max_detection_points, scores)
    return bench

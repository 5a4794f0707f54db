"""Each model family's default training recipe, from pretrained weights and from scratch.

Pure data (the launcher Lambda reads it too): ``Hyperparameters`` fills every knob the
user leaves out from ``recipe(model, pretrained)``. The learning rate is given for a
reference batch and scaled linearly to ``batch_size`` (Goyal et al., 2017); data
parallelism scales it again by the world size (trainer/collectives.py).

Sources (docs/training-image.md, "Training recipes"):

- Faster R-CNN, RetinaNet, pretrained: torchvision's detection references
  (references/detection/train.py and README.md): SGD, momentum 0.9, weight decay 1e-4,
  lr 0.02 (Faster R-CNN) / 0.01 (RetinaNet) for 8 GPUs x 2 images, linear warm-up,
  horizontal flip only.
- EfficientDet, pretrained: rwightman/efficientdet-pytorch (train.py defaults and the
  README's command): momentum SGD, lr 0.09 for 4 GPUs x 16 images, weight decay 4e-5,
  warm-up then cosine, gradient clipping at 10, EMA of the weights (decay 0.9998).
- Every family from scratch: the loop IceVision's own tutorials use (fastai's
  ``fit_one_cycle`` with Adam, decoupled weight decay 0.01), plus the gradient clipping at
  norm 10 every recipe has (``grad_clip_norm``); the learning rates are fastai's usual range
  for Adam. benchmarks/bench_quality.py measures all three against IceVision's own loop on
  the same data (docs/performance.md, "Model quality with the defaults").
"""

from __future__ import annotations

from dataclasses import dataclass

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("onecycle", "cosine")
AUGMENTATIONS = ("light", "standard", "none")


@dataclass(frozen=True)
class Recipe:
    optimizer: str
    learning_rate: float  # for ``reference_batch`` images per step
    reference_batch: int
    weight_decay: float
    schedule: str
    ema: bool
    augmentation: str
    source: str

    def learning_rate_for(self, batch_size: int) -> float:
        """The linear scaling rule: ``learning_rate`` x batch_size / reference_batch."""
        return self.learning_rate * batch_size / self.reference_batch


_TORCHVISION = "pytorch/vision references/detection (train.py, README.md)"
_EFFDET = "rwightman/efficientdet-pytorch (train.py, README.md)"
_ONE_CYCLE = "IceVision/fastai fit_one_cycle (Adam); see docs/performance.md, model quality"

RECIPES: dict[tuple[str, bool], Recipe] = {
    ("faster_rcnn", True): Recipe("sgd", 0.02, 16, 1e-4, "cosine", False, "light", _TORCHVISION),
    ("retinanet", True): Recipe("sgd", 0.01, 16, 1e-4, "cosine", False, "light", _TORCHVISION),
    ("efficientdet", True): Recipe("sgd", 0.09, 64, 4e-5, "cosine", True, "light", _EFFDET),
    ("faster_rcnn", False): Recipe("adamw", 1e-3, 8, 0.01, "onecycle", False, "light", _ONE_CYCLE),
    ("retinanet", False): Recipe("adamw", 1e-3, 8, 0.01, "onecycle", False, "light", _ONE_CYCLE),
    ("efficientdet", False): Recipe("adamw", 3e-3, 8, 0.01, "onecycle", False, "light", _ONE_CYCLE),
}


def recipe(model: str, pretrained: bool) -> Recipe:
    return RECIPES[(model, pretrained)]

"""Load a detrain model artifact and detect objects in images.

This file travels inside model.tar.gz as ``detector.py``. It needs torch,
torchvision, Pillow and numpy (and effdet for EfficientDet models), and nothing
from the repository that trained the model::

    from detector import Detector
    detector = Detector.load("path/to/extracted/model.tar.gz")
    for found in detector.predict(["a.jpg", "b.jpg"], threshold=0.5):
        print(found)  # [{"label": "cat", "score": 0.93, "box": [x1, y1, x2, y2]}, ...]

or ``python detector.py MODEL_DIR IMAGE...`` (prints JSON lines).

The model folder's detector.py is this file with the project modules it imports (the
image decoder, EfficientDet's builder, the output file names) written in place of their imports, by
``trainer.artifacts.detector_source``: the trainer and the detector run the same code.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image

# This repository's own modules: detector.py carries their code in place of these lines.
from contract.outputs import MODEL_CONFIG_FILE
from trainer.families.efficientdet_bench import build_bench
from trainer.images import read_rgb, to_rgb

SUPPORTED_FORMAT = 1


def _faster_rcnn(backbone: str, num_classes: int, _image_size: int) -> torch.nn.Module:
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone

    body = resnet_fpn_backbone(backbone_name=backbone.removesuffix("_fpn"), weights=None)
    return _prepared_outside(FasterRCNN(body, num_classes))


def _retinanet(backbone: str, num_classes: int, _image_size: int) -> torch.nn.Module:
    from torchvision.models.detection import RetinaNet
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
    from torchvision.ops.feature_pyramid_network import LastLevelP6P7

    body = resnet_fpn_backbone(  # IceVision's RetinaNet backbones: C3-C5 plus P6/P7
        backbone_name=backbone.removesuffix("_fpn"),
        weights=None,
        returned_layers=[2, 3, 4],
        extra_blocks=LastLevelP6P7(256, 256),
    )
    return _prepared_outside(RetinaNet(body, num_classes=num_classes))


def _prepared_outside(model: torch.nn.Module) -> torch.nn.Module:
    """Resizing and normalization happen in `_prepare`, as in training."""
    model.transform.normalize = lambda image: image
    model.transform.resize = lambda image, target=None: (image, target)
    return model


def _torchvision_detections(model: torch.nn.Module, batch: torch.Tensor) -> list[tuple]:
    return [
        (o["boxes"].cpu().numpy(), o["scores"].cpu().numpy(), o["labels"].cpu().numpy())
        for o in model(list(batch))
    ]


def _efficientdet_model(backbone: str, num_classes: int, image_size: int) -> torch.nn.Module:
    return build_bench(backbone, num_classes, image_size, task="predict", pretrained=False)


def _efficientdet_detections(model: torch.nn.Module, batch: torch.Tensor) -> list[tuple]:
    rows = model(batch).cpu().numpy()
    return [(r[:, :4], r[:, 4], r[:, 5].astype(int)) for r in rows]


class _Family(NamedTuple):
    build: Callable[[str, int, int], torch.nn.Module]  # (backbone, classes + 1, image size)
    weights_of: Callable[[torch.nn.Module], torch.nn.Module]  # the part the weights load into
    detect: Callable[[torch.nn.Module, torch.Tensor], list[tuple]]  # boxes, scores, labels


# This file's own table of the model families (it ships without the repository, whose
# registry is trainer/families/): a new family adds a row here.
FAMILIES = {
    "faster_rcnn": _Family(_faster_rcnn, lambda model: model, _torchvision_detections),
    "retinanet": _Family(_retinanet, lambda model: model, _torchvision_detections),
    "efficientdet": _Family(
        _efficientdet_model, lambda bench: bench.model, _efficientdet_detections
    ),
}


def _family(name: str) -> _Family:
    if name not in FAMILIES:
        raise ValueError(f"model family {name!r} is unknown; allowed: {', '.join(FAMILIES)}")
    return FAMILIES[name]


class Detector:
    """A trained detector and the preprocessing it was trained with."""

    def __init__(
        self, model: torch.nn.Module, config: dict, classes: list[str], device: str
    ) -> None:
        self.model, self.config, self.classes, self.device = model, config, classes, device
        self.size = int(config["image_size"])
        pre = config["preprocessing"]
        self.pad = np.array(pre["pad_value"], dtype=np.uint8)
        self.mean = np.array(pre["mean"], dtype=np.float32)
        self.std = np.array(pre["std"], dtype=np.float32)

    @classmethod
    def load(cls, model_dir: str | Path, device: str = "cpu") -> Detector:
        folder = Path(model_dir)
        config = json.loads((folder / MODEL_CONFIG_FILE).read_text())
        if config.get("format") != SUPPORTED_FORMAT:
            raise ValueError(
                f"artifact format {config.get('format')!r}; this loader reads {SUPPORTED_FORMAT}"
            )
        classes = json.loads((folder / config["class_map"]).read_text())
        family = _family(config["model"])
        model = family.build(config["backbone"], len(classes), config["image_size"])
        weights = torch.load(folder / config["weights"], map_location="cpu", weights_only=True)
        family.weights_of(model).load_state_dict(weights, strict=True)
        return cls(model.to(device).eval(), config, classes, device)

    def _prepare(self, image: Image.Image) -> tuple[np.ndarray, float, int, int]:
        """An RGB image resized, padded and normalized as in training; the scale and offsets."""
        scale = self.size / max(image.size)
        width, height = (max(1, round(side * scale)) for side in image.size)
        resized = np.asarray(image.resize((width, height), Image.Resampling.BILINEAR))
        canvas = np.empty((self.size, self.size, 3), dtype=np.uint8)
        canvas[:] = self.pad
        top, left = (self.size - height) // 2, (self.size - width) // 2
        canvas[top : top + height, left : left + width] = resized
        pixels = (canvas.astype(np.float32) / 255.0 - self.mean) / self.std
        return pixels.transpose(2, 0, 1), scale, left, top

    @torch.no_grad()
    def predict(self, images: list, threshold: float = 0.5) -> list[list[dict]]:
        """Detections per image (a path or a PIL image), boxes in the image's own pixels."""
        rgb = [read_rgb(str(i)) if isinstance(i, (str, Path)) else to_rgb(i) for i in images]
        sizes = [image.size for image in rgb]
        prepared = [self._prepare(image) for image in rgb]
        batch = torch.from_numpy(np.stack([p[0] for p in prepared])).to(self.device)
        raw = _family(self.config["model"]).detect(self.model, batch)
        results = []
        for (boxes, scores, labels), (_, scale, left, top) in zip(raw, prepared, strict=True):
            keep = scores >= threshold
            original = (boxes[keep] - np.array([left, top, left, top])) / scale
            width, height = sizes[len(results)]
            original = np.clip(original, 0, [width, height, width, height])
            results.append(
                [
                    {
                        "label": self.classes[int(label)],
                        "score": float(score),
                        "box": [round(float(v), 1) for v in box],
                    }
                    for box, score, label in zip(original, scores[keep], labels[keep], strict=True)
                ]
            )
        return results


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: python detector.py MODEL_DIR IMAGE [IMAGE ...]", file=sys.stderr)
        return 2
    detector = Detector.load(argv[0])
    for path, found in zip(argv[1:], detector.predict(argv[1:]), strict=True):
        print(json.dumps({"image": path, "detections": found}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

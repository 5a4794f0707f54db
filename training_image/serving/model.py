"""The served model: the model folder's own ``detector.py``, loaded once, and its answers.

The server imports ``detector.py`` from the model folder, as ``detrain predict`` does, so the
endpoint, ``predict`` and anyone holding the artifact share one decoder and one preprocessing
path: what the server answers for an image is what ``Detector.predict`` returns for it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contract.outputs import MODEL_CONFIG_FILE, MODEL_LOADER_FILE, load_detector_module
from serving.inputs import Invocation

log = logging.getLogger(__name__)


class ModelMissing(Exception):
    """The model folder does not hold a detrain model."""


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass
class ServedModel:
    detector: Any  # detector.py's Detector
    config: dict
    device: str

    @classmethod
    def load(cls, folder: Path, device: str) -> ServedModel:
        missing = [n for n in (MODEL_CONFIG_FILE, MODEL_LOADER_FILE) if not (folder / n).is_file()]
        if missing:
            raise ModelMissing(
                f"{folder} holds no detrain model: it has no {' or '.join(missing)} (SageMaker "
                "unpacks the model's model.tar.gz there: check the Model's ModelDataUrl)"
            )
        detector = load_detector_module(folder).Detector.load(folder, device=device)
        config = json.loads((folder / MODEL_CONFIG_FILE).read_text())
        return cls(detector, config, device)

    @property
    def classes(self) -> list[str]:
        return list(self.detector.classes)

    @property
    def epoch(self) -> int | None:
        """The training epoch whose weights these are (config.json's training.model_epoch)."""
        return self.config.get("training", {}).get("model_epoch", {}).get("epoch")

    def describe(self) -> dict:
        return {
            "family": self.config["model"],
            "backbone": self.config["backbone"],
            "image_size": self.config["image_size"],
            "epoch": self.epoch,
            "classes": self.classes[1:],  # index 0 is the background
        }

    def detect(self, invocation: Invocation) -> dict:
        """The JSON answer for one image: boxes (x1, y1, x2, y2) in the upright image's pixels,
        best score first, at most ``max_detections`` of them."""
        options = invocation.options
        [found] = self.detector.predict([invocation.image], threshold=options.threshold)
        found = sorted(found, key=lambda d: d["score"], reverse=True)[: options.max_detections]
        index = {name: number for number, name in enumerate(self.classes)}
        return {
            "detections": [
                {
                    "box": d["box"],
                    "score": d["score"],
                    "class_id": index[d["label"]],
                    "label": d["label"],
                }
                for d in found
            ],
            "image": {"width": invocation.width, "height": invocation.height},
            "threshold": options.threshold,
            "max_detections": options.max_detections,
            "model": {
                "family": self.config["model"],
                "backbone": self.config["backbone"],
                "epoch": self.epoch,
            },
        }

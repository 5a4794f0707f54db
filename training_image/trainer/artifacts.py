"""What a run leaves behind: the model artifact and the per-epoch metrics.

``/opt/ml/model`` (uploaded as model.tar.gz) holds ``model.pt`` (the state dict),
``class_map.json``, ``detector.py`` (a loader that needs torch, torchvision and,
for EfficientDet, effdet, but none of this repository) and, written last,
``config.json``: a model folder without config.json is not a finished model.
``/opt/ml/output/data`` (output.tar.gz) holds metrics.json, metrics.csv and
metrics.png, rewritten after every epoch.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from trainer.model import DetectionModel

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.pt"
CLASS_MAP_FILE = "class_map.json"
LOADER_FILE = "detector.py"
ARTIFACT_FORMAT = 1
IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)
PAD_VALUE = (124, 116, 104)
_LOADER_SOURCE = Path(__file__).with_name("standalone_detector.py")


def _write_atomic(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def clear(model_dir: Path) -> None:
    """Empty the model folder, so nothing in it can pass for a finished model."""
    if not model_dir.is_dir():
        return
    for entry in model_dir.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def save_model(model_dir: Path, model: DetectionModel, *, summary: Mapping[str, Any]) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_LOADER_SOURCE, model_dir / LOADER_FILE)
    classes = ["background", *model.class_names]
    _write_atomic(model_dir / CLASS_MAP_FILE, json.dumps(classes, indent=1).encode())
    buffer = io.BytesIO()
    torch.save(model.weights(), buffer)
    _write_atomic(model_dir / WEIGHTS_FILE, buffer.getvalue())
    config = {
        "format": ARTIFACT_FORMAT,
        "model": model.name,
        "backbone": model.backbone,
        "image_size": model.image_size,
        "num_classes": len(classes),
        "class_map": CLASS_MAP_FILE,
        "weights": WEIGHTS_FILE,
        "preprocessing": {
            "resize": "longest side to image_size, then pad to a centered square",
            "pad_value": list(PAD_VALUE),
            "mean": list(IMAGE_MEAN),
            "std": list(IMAGE_STD),
        },
        "training": dict(summary),
    }
    _write_atomic(model_dir / CONFIG_FILE, json.dumps(config, indent=2).encode())


def save_metrics(output_dir: Path, history: Sequence[Mapping[str, float]]) -> None:
    """metrics.json, metrics.csv and metrics.png for the epochs so far."""
    output_dir.mkdir(parents=True, exist_ok=True)
    _write_atomic(output_dir / "metrics.json", json.dumps(list(history), indent=1).encode())
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(history[0]) if history else ["epoch"])
    writer.writeheader()
    writer.writerows(history)
    _write_atomic(output_dir / "metrics.csv", text.getvalue().encode())
    if history:
        _write_atomic(output_dir / "metrics.png", _plot(history))


def _plot(history: Sequence[Mapping[str, float]]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    epochs = [row["epoch"] for row in history]
    figure = Figure(figsize=(10, 4), dpi=100)
    loss_axes, map_axes = figure.subplots(1, 2)
    for key in ("train_loss", "valid_loss"):
        loss_axes.plot(epochs, [row[key] for row in history], marker="o", label=key)
    for key in ("valid_map", "valid_map_50"):
        map_axes.plot(epochs, [row[key] for row in history], marker="o", label=key)
    for axes, title in ((loss_axes, "loss"), (map_axes, "COCO mAP")):
        axes.set_title(title)
        axes.set_xlabel("epoch")
        axes.grid(alpha=0.3)
        axes.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()

"""What a run leaves behind: the model artifact and the per-epoch metrics (contract/outputs.py
names them).

``/opt/ml/model`` (uploaded as model.tar.gz) holds ``model.pt`` (the state dict),
``class_map.json``, ``detector.py`` (a loader that needs torch, torchvision and,
for EfficientDet, effdet, but none of this repository: ``detector_source`` writes the
project modules it uses into it) and, written last, ``config.json``: a model folder
without config.json is not a finished model. ``/opt/ml/output/data`` (output.tar.gz) holds
metrics.json, metrics.csv and metrics.png, rewritten after every epoch.
"""

from __future__ import annotations

import ast
import csv
import importlib
import inspect
import io
import json
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from contract.outputs import (
    METRICS_CSV_FILE,
    METRICS_JSON_FILE,
    METRICS_PLOT_FILE,
    MODEL_CLASS_MAP_FILE,
    MODEL_CONFIG_FILE,
    MODEL_LOADER_FILE,
    MODEL_WEIGHTS_FILE,
)
from trainer.model import DetectionModel

ARTIFACT_FORMAT = 1
IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)
PAD_VALUE = (124, 116, 104)
_LOADER_SOURCE = Path(__file__).with_name("standalone_detector.py")
# The project modules the loader imports, written into detector.py in place of their import.
INLINED_MODULES = ("contract.outputs", "trainer.families.efficientdet_bench", "trainer.images")


def detector_source() -> str:
    """detector.py: standalone_detector.py with each of ``INLINED_MODULES``' import replaced by
    that module's code, so the model folder needs nothing of this repository."""
    source = _LOADER_SOURCE.read_text(encoding="utf-8")
    for name in INLINED_MODULES:
        found = re.findall(rf"^from {re.escape(name)} import [\w, ]+\n", source, re.MULTILINE)
        if len(found) != 1:
            raise RuntimeError(f"{_LOADER_SOURCE.name} must import {name} once, on one line")
        source = source.replace(found[0], _module_body(name))
    _check_standalone(source)
    return source


def _module_body(name: str) -> str:
    """The module's code from its first statement after the docstring and ``__future__``."""
    text = inspect.getsource(importlib.import_module(name))
    first = next(
        statement
        for statement in ast.parse(text).body
        if not (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant))
        and not (isinstance(statement, ast.ImportFrom) and statement.module == "__future__")
    )
    code = "".join(text.splitlines(keepends=True)[first.lineno - 1 :])
    path = f"training_image/{name.replace('.', '/')}.py"
    return f"# ---- {path} (copied in at save time: edit that file)\n{code}# ---- end of {path}\n"


_PROJECT_PACKAGES = ("trainer", "contract")


def _check_standalone(source: str) -> None:
    """No import of this repository left, and no top-level name defined twice."""
    tree = ast.parse(source)
    imported = [
        (node.lineno, name.split(".")[0])
        for node in ast.walk(tree)
        for name in (
            [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else []
        )
    ]
    project = [line for line, package in imported if package in _PROJECT_PACKAGES]
    if project:
        raise RuntimeError(f"detector.py would import this repository (lines {project})")
    defined = [
        node.name if not isinstance(node, ast.Assign) else target.id
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Assign))
        for target in (node.targets if isinstance(node, ast.Assign) else [node])
        if isinstance(target, (ast.Name, ast.FunctionDef, ast.ClassDef))
    ]
    twice = sorted({name for name in defined if defined.count(name) > 1})
    if twice:
        raise RuntimeError(f"detector.py would define {twice} twice (inlined and in the loader)")


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
    _write_atomic(model_dir / MODEL_LOADER_FILE, detector_source().encode())
    classes = ["background", *model.class_names]
    _write_atomic(model_dir / MODEL_CLASS_MAP_FILE, json.dumps(classes, indent=1).encode())
    buffer = io.BytesIO()
    torch.save(model.weights(), buffer)
    _write_atomic(model_dir / MODEL_WEIGHTS_FILE, buffer.getvalue())
    config = {
        "format": ARTIFACT_FORMAT,
        "model": model.name,
        "backbone": model.backbone,
        "image_size": model.image_size,
        "num_classes": len(classes),
        "class_map": MODEL_CLASS_MAP_FILE,
        "weights": MODEL_WEIGHTS_FILE,
        "preprocessing": {
            "resize": "longest side to image_size, then pad to a centered square",
            "pad_value": list(PAD_VALUE),
            "mean": list(IMAGE_MEAN),
            "std": list(IMAGE_STD),
        },
        "training": dict(summary),
    }
    _write_atomic(model_dir / MODEL_CONFIG_FILE, json.dumps(config, indent=2).encode())


def save_metrics(output_dir: Path, history: Sequence[Mapping[str, float]]) -> None:
    """The metrics files (json, csv, png) for the epochs so far."""
    output_dir.mkdir(parents=True, exist_ok=True)
    _write_atomic(output_dir / METRICS_JSON_FILE, json.dumps(list(history), indent=1).encode())
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(history[0]) if history else ["epoch"])
    writer.writeheader()
    writer.writerows(history)
    _write_atomic(output_dir / METRICS_CSV_FILE, text.getvalue().encode())
    if history:
        _write_atomic(output_dir / METRICS_PLOT_FILE, _plot(history))


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

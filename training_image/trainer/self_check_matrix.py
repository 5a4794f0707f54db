"""The self-check's model matrix: every backbone of a family, from scratch, through the preflight.

Each model x backbone the contract allows is built with ``pretrained=False`` and given one
preflight training step and one validation step (trainer/preflight.py) at the family's smallest
image size, once with 1 class and once with 20: EfficientDet's top-k is capped at anchors x
classes, which at 128 px and one class is below effdet's default. The test suite builds one
backbone per family (tests/trainer/test_preflight.py); this builds them all, in the image on a
CPU before it is pushed, and on a GPU in benchmarks/gpu_check.sh.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from contract.families import family
from contract.hyperparameters import Hyperparameters
from trainer import engine, icevision_patches, preflight, sample_data, tables
from trainer import model as models
from trainer.self_check import CheckFailed
from trainer.self_check_jobs import image_size

CLASS_COUNTS = (1, 20)
IMAGES, BATCH_SIZE = 2, 2  # one training step, one validation step


def backbones(name: str) -> tuple[str, ...]:
    """The backbones the check builds: all the contract allows for the family."""
    return family(name).backbones


def dataset_with_classes(folder: Path, classes: int, image_size: int) -> tables.DetectionTable:
    """The generated shapes, their COCO file declaring ``classes`` classes (boxes beyond the
    last class take the last one; classes without a box are allowed, as in a real dataset)."""
    sample_data.generate(folder, images=IMAGES, image_size=image_size)
    annotations = folder / sample_data.ANNOTATIONS_FILENAME
    coco = json.loads(annotations.read_text())
    coco["categories"] = [{"id": i, "name": f"class{i}"} for i in range(1, classes + 1)]
    for box in coco["annotations"]:
        box["category_id"] = min(box["category_id"], classes)
    annotations.write_text(json.dumps(coco))
    return tables.load(folder)


def preflight_once(hp: Hyperparameters, table: tables.DetectionTable, device: torch.device):
    """Build the model and run the job's preflight on ``table``; its estimate."""
    detector = models.create(hp, table.class_names).to(device)
    optimizer = engine.optimizer(detector, hp)
    scheduler = engine.schedule(optimizer, 1, hp.epochs)
    scaler = torch.amp.GradScaler(device.type, enabled=False)
    return preflight.run(
        detector,
        train_table=table,
        valid_table=table,
        hp=hp,
        device=device,
        optimizer=optimizer,
        scheduler=scheduler,
        scaler=scaler,
        train_steps=1,
        valid_steps=1,
        epochs_left=hp.epochs,
    )


def every_backbone(name: str, workdir: Path, device: torch.device | None = None) -> str:
    """One family's line: each backbone x class count preflights, or the first that does not."""
    device = device or torch.device("cpu")
    icevision_patches.apply()
    size = image_size(name)
    datasets = {n: dataset_with_classes(workdir / f"{n}-classes", n, size) for n in CLASS_COUNTS}
    seconds = []
    for backbone in backbones(name):
        started = time.monotonic()
        for classes, table in datasets.items():
            hp = Hyperparameters(
                model=name,
                backbone=backbone,
                pretrained=False,
                epochs=1,
                batch_size=BATCH_SIZE,
                image_size=size,
                num_workers=0,
            )
            try:
                preflight_once(hp, table, device)
            except Exception as error:
                raise CheckFailed(
                    f"{name}/{backbone} with {classes} classes at {size} px: "
                    f"{type(error).__name__}: {error}"
                ) from error
        seconds.append(f"{backbone} {time.monotonic() - started:.1f} s")
    counts = " and ".join(str(n) for n in CLASS_COUNTS)
    return f"{size} px, {counts} classes, on {device.type}: {', '.join(seconds)}"

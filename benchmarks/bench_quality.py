"""Model quality with the defaults: the trainer vs IceVision 0.12's own fastai loop.

    .venv/bin/python benchmarks/bench_quality.py [efficientdet] [faster_rcnn] [retinanet]

For each family, at its smallest size, from scratch, on CPU: the same generated shapes
dataset (detrain/sample_data.py) with the same fixed split (first 75% train, the rest
validation), the same image size, batch, seed and epochs.

- trainer: ``train train`` on an /opt/ml tree, hyperparameters without ``learning_rate``
  (nor optimizer, schedule, EMA, augmentation): the family's recipe.
- reference: IceVision's fastai learner (``model_type.fastai.learner``), ``lr_find()``
  (its valley rule) then ``fit_one_cycle(epochs, lr)``, on the trainer's light
  augmentation (flip, resize, pad), from the same initial weights.

Both are scored by the same code (trainer.engine.validate: COCO mAP@[.5:.95]) after each
epoch; the ratio is best trainer mAP / best reference mAP (goal >= 1.0). fastai is installed
without its dependencies into .bench-deps/ from benchmarks/requirements-quality.txt.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEPS = ROOT / ".bench-deps"
REQUIREMENTS = ROOT / "benchmarks" / "requirements-quality.txt"
sys.path.insert(0, str(ROOT / "training_image"))
sys.path.insert(0, str(ROOT))

SEED = 42
IMAGE_SIZE = 128
BATCH = 8


@dataclass(frozen=True)
class Setup:
    backbone: str
    images: int
    epochs: int
    lr_find_steps: int  # fastai's lr_find num_it (100 by default; fewer for the slow families)


SETUPS = {
    "efficientdet": Setup("tf_lite0", 96, 30, 100),
    "faster_rcnn": Setup("resnet18_fpn", 32, 8, 40),
    "retinanet": Setup("resnet18_fpn", 32, 8, 40),
}


def _install_fastai() -> None:
    if not DEPS.exists():
        pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps"]
        subprocess.run([*pip, "--target", str(DEPS), "-r", str(REQUIREMENTS)], check=True)
    sys.path.insert(0, str(DEPS))


def _dataset(folder: Path, images: int) -> tuple[Path, Path]:
    """The generated dataset as two COCO channels: first 75% training, the rest validation."""
    from detrain import sample_data

    whole = sample_data.generate(folder / "whole", images=images, image_size=IMAGE_SIZE, seed=0)
    doc = json.loads((whole.folder / "annotations.json").read_text())
    cut = images * 3 // 4
    channels = []
    for name, chosen in (("training", doc["images"][:cut]), ("validation", doc["images"][cut:])):
        channel = folder / name
        (channel / "images").mkdir(parents=True)
        ids = {image["id"] for image in chosen}
        for image in chosen:
            shutil.copy(whole.folder / "images" / image["file_name"], channel / "images")
        part = {
            **doc,
            "images": chosen,
            "annotations": [a for a in doc["annotations"] if a["image_id"] in ids],
        }
        (channel / "annotations.json").write_text(json.dumps(part))
        channels.append(channel)
    return channels[0], channels[1]


def _hyperparameters(family: str, setup: Setup) -> dict[str, str]:
    return {
        "model": family,
        "backbone": setup.backbone,
        "pretrained": "false",
        "epochs": str(setup.epochs),
        "batch_size": str(BATCH),
        "image_size": str(IMAGE_SIZE),
        "seed": str(SEED),
        "num_workers": "0",
        "amp": "false",
    }


def trainer_run(family: str, setup: Setup, training: Path, validation: Path, work: Path):
    """``train train`` with the defaults; returns (best mAP, per-epoch mAPs, seconds)."""
    base = work / "opt-ml"
    config = base / "input" / "config"
    config.mkdir(parents=True)
    for name, source in (("training", training), ("validation", validation)):
        shutil.copytree(source, base / "input" / "data" / name)
    (config / "hyperparameters.json").write_text(json.dumps(_hyperparameters(family, setup)))
    (config / "inputdataconfig.json").write_text(
        json.dumps(
            {
                c: {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated"}
                for c in ("training", "validation")
            }
        )
    )
    env = {**os.environ, "SAGEMAKER_BASE_DIR": str(base), "TRAINING_JOB_NAME": "bench-quality"}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(ROOT / "training_image" / "train"), "train"],
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode:
        raise RuntimeError(result.stdout[-3000:] + result.stderr[-3000:])
    history = json.loads((base / "output" / "data" / "metrics.json").read_text())
    maps = [row["valid_map"] for row in history]
    return max(maps), maps, time.monotonic() - started


def reference_run(family: str, setup: Setup, training: Path, validation: Path, work: Path):
    """IceVision's fastai loop: lr_find, then fit_one_cycle; returns (best, maps, s, lr)."""
    import torch
    from fastai.callback.core import Callback

    from contract.hyperparameters import from_values
    from trainer import batches, compat, data, engine
    from trainer import model as models

    compat.apply()
    hp = from_values(_hyperparameters(family, setup))
    train_table = data.load(training)
    valid_table = data.load(validation, train_table.class_names)
    torch.manual_seed(SEED)
    detector = models.create(hp, train_table.class_names)
    kind = detector.kind
    # IceVision's own data path (its Dataset, Normalize in the transforms, its collate) feeds
    # the reference loop; the score uses the trainer's validation batches, as for our run.
    train_dl = kind.train_dl(
        _icevision_dataset(train_table, train=True), batch_size=BATCH, shuffle=True
    )
    valid_dl = kind.valid_dl(
        _icevision_dataset(valid_table, train=False), batch_size=BATCH, shuffle=False
    )
    scored_batches = batches.loader(
        data.dataset(valid_table, IMAGE_SIZE, train=False),
        detector.name,
        train=False,
        batch_size=BATCH,
    )
    maps: list[float] = []

    class Score(Callback):
        order = 100

        def after_epoch(self) -> None:
            if getattr(self.learn, "lr_finder", None) is not None:
                return
            scored = engine.validate(
                detector, scored_batches, device=torch.device("cpu"), stop=threading.Event()
            )
            maps.append(scored.map)

    learn = kind.fastai.learner(dls=[train_dl, valid_dl], model=detector.module, cbs=[Score()])
    learn.path = work  # lr_find saves and restores the model there
    started = time.monotonic()
    lr = float(learn.lr_find(num_it=setup.lr_find_steps, show_plot=False).valley)
    maps.clear()
    learn.fit_one_cycle(setup.epochs, lr)
    return max(maps), maps, time.monotonic() - started, lr


def _icevision_dataset(table, *, train: bool):
    """IceVision 0.12's Dataset as its own examples build it: resize, pad, normalize; flip."""
    from icevision import tfms
    from icevision.data.dataset import Dataset

    from trainer import data

    steps = [*tfms.A.resize_and_pad(IMAGE_SIZE), tfms.A.Normalize()]
    if train:
        steps.insert(0, tfms.A.HorizontalFlip(p=0.5))
    return Dataset(data.Records(table), tfms.A.Adapter(steps))


def main(families: list[str]) -> None:
    _install_fastai()
    rows = []
    for family in families or list(SETUPS):
        setup = SETUPS[family]
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            training, validation = _dataset(work / "data", setup.images)
            ours, our_maps, our_seconds = trainer_run(family, setup, training, validation, work)
            theirs, their_maps, their_seconds, lr = reference_run(
                family, setup, training, validation, work
            )
        row = {
            "family": family,
            "backbone": setup.backbone,
            "images": setup.images,
            "epochs": setup.epochs,
            "trainer_best_map": round(ours, 3),
            "reference_best_map": round(theirs, 3),
            "ratio": round(ours / theirs, 2) if theirs else None,
            "reference_lr": lr,
            "trainer_seconds": round(our_seconds),
            "reference_seconds": round(their_seconds),
            "trainer_maps": [round(m, 3) for m in our_maps],
            "reference_maps": [round(m, 3) for m in their_maps],
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    print("| family | trainer best mAP | reference best mAP | ratio |")
    print("|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['family']} {row['backbone']} | {row['trainer_best_map']} "
            f"| {row['reference_best_map']} | {row['ratio']} |"
        )


if __name__ == "__main__":
    main(sys.argv[1:])

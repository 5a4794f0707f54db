"""Model quality with the defaults: the trainer vs IceVision 0.12's own fastai loop.

    .venv/bin/python benchmarks/bench_quality.py [efficientdet] [retinanet] [faster_rcnn]
        [--hp KEY=VALUE ...] [--reference-lr NUMBER]

For each family, at its smallest size, from scratch, on CPU: the same generated shapes
dataset (training_image/trainer/sample_data.py) with the same fixed split (first 75% train, the rest
validation), the same image size, batch, seed and epochs.

- trainer: ``train train`` on an /opt/ml tree, hyperparameters without ``learning_rate``
  (nor optimizer, schedule, EMA, augmentation): the family's recipe. ``--hp`` (as
  ``detrain``'s) changes the trainer's side only, to weigh an alternative against the
  recipe: ``--hp learning_rate=auto``, ``--hp grad_clip_norm=0``, ``--hp seed=7``.
- reference: IceVision's fastai learner (``model_type.fastai.learner``), unfrozen (it
  starts frozen, for fine-tuning), ``lr_find()`` (its valley rule) then
  ``fit_one_cycle(epochs, lr)``, on the trainer's light augmentation (flip, resize, pad),
  from the same initial weights. ``--reference-lr`` skips its ``lr_find`` and uses that
  value (to tell its learning-rate pick from the rest of its loop).

The two runs go side by side, one CPU core each (the trainer as a process).

Both are scored by the same code (trainer.engine.validate: COCO mAP@[.5:.95]) after each
epoch; the ratio is best trainer mAP / best reference mAP (goal >= 1.0). fastai is installed
without its dependencies into .bench-deps/ from benchmarks/requirements-quality.txt.
"""

from __future__ import annotations

import argparse
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
IMAGES = 96  # 72 training, 24 validation


@dataclass(frozen=True)
class Setup:
    backbone: str
    epochs: int
    lr_find_steps: int  # fastai's lr_find num_it (100 by default; fewer for the slowest family)


SETUPS = {
    "efficientdet": Setup("tf_lite0", 30, 100),
    "retinanet": Setup("resnet18_fpn", 20, 100),
    "faster_rcnn": Setup("resnet18_fpn", 12, 50),  # about 6 s a step on one CPU core
}


def _install_fastai() -> None:
    if not DEPS.exists():
        pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps"]
        subprocess.run([*pip, "--target", str(DEPS), "-r", str(REQUIREMENTS)], check=True)
    sys.path.insert(0, str(DEPS))


def _dataset(folder: Path, images: int) -> tuple[Path, Path]:
    """The generated dataset as two COCO channels: first 75% training, the rest validation."""
    from trainer import sample_data

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
    """The hyperparameters both sides share (``--hp`` changes the trainer's only)."""
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


class TrainerRun:
    """``train train`` with the defaults, started as a process on one CPU core."""

    def __init__(
        self,
        family: str,
        setup: Setup,
        training: Path,
        validation: Path,
        work: Path,
        changes: dict[str, str],
    ) -> None:
        self.base, self.log = work / "opt-ml", work / "trainer.log"
        config = self.base / "input" / "config"
        config.mkdir(parents=True)
        for name, source in (("training", training), ("validation", validation)):
            shutil.copytree(source, self.base / "input" / "data" / name)
        hyperparameters = {**_hyperparameters(family, setup), **changes}
        (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
        (config / "inputdataconfig.json").write_text(
            json.dumps(
                {
                    c: {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated"}
                    for c in ("training", "validation")
                }
            )
        )
        env = {
            **os.environ,
            "SAGEMAKER_BASE_DIR": str(self.base),
            "TRAINING_JOB_NAME": "bench-quality",
            "OMP_NUM_THREADS": "1",
        }
        command = [sys.executable, str(ROOT / "training_image" / "train"), "train"]
        started = time.monotonic()
        with self.log.open("w") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        self.seconds = 0.0

        def clock() -> None:
            self.process.wait()
            self.seconds = time.monotonic() - started

        self.clock = threading.Thread(target=clock, daemon=True)
        self.clock.start()

    def result(self) -> tuple[float, list[float]]:
        """Waits for the trainer; returns (best mAP, per-epoch mAPs)."""
        self.clock.join()
        if self.process.returncode:
            raise RuntimeError(self.log.read_text()[-6000:])
        history = json.loads((self.base / "output" / "data" / "metrics.json").read_text())
        maps = [row["valid_map"] for row in history]
        return max(maps), maps


def reference_run(
    family: str,
    setup: Setup,
    training: Path,
    validation: Path,
    work: Path,
    lr: float | None = None,
):
    """IceVision's fastai loop: lr_find (unless ``lr`` is given), then fit_one_cycle;
    returns (best mAP, per-epoch mAPs, seconds, learning rate)."""
    import torch
    from fastai.callback.core import Callback

    from contract.hyperparameters import from_values
    from trainer import batches, dataset, engine, icevision_patches, tables
    from trainer import model as models

    icevision_patches.apply()
    torch.set_num_threads(1)  # the other core runs the trainer
    hp = from_values(_hyperparameters(family, setup))
    train_table = tables.load(training)
    valid_table = tables.load(validation, train_table.class_names)
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
        dataset.build(valid_table, IMAGE_SIZE, train=False),
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
    # IceVision's learner starts frozen (only the last parameter group trains), the transfer
    # learning recipe its examples follow with fine_tune(). From scratch, every layer trains.
    learn.unfreeze()
    learn.path = work  # lr_find saves and restores the model there
    started = time.monotonic()
    with learn.no_bar():
        if lr is None:
            lr = float(learn.lr_find(num_it=setup.lr_find_steps, show_plot=False).valley)
        maps.clear()
        learn.fit_one_cycle(setup.epochs, lr)
    return max(maps), maps, time.monotonic() - started, lr


def _icevision_dataset(table, *, train: bool):
    """IceVision 0.12's Dataset as its own examples build it: resize, pad, normalize; flip."""
    from icevision import tfms
    from icevision.data.dataset import Dataset

    from trainer import dataset

    steps = [*tfms.A.resize_and_pad(IMAGE_SIZE), tfms.A.Normalize()]
    if train:
        steps.insert(0, tfms.A.HorizontalFlip(p=0.5))
    return Dataset(dataset.Records(table), tfms.A.Adapter(steps))


def _words(changes: dict[str, str]) -> str:
    return " ".join(f"{key}={value}" for key, value in changes.items())


def main(families: list[str], changes: dict[str, str], reference_lr: float | None) -> None:
    _install_fastai()
    rows = []
    for family in families or list(SETUPS):
        setup = SETUPS[family]
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            training, validation = _dataset(work / "data", IMAGES)
            trainer = TrainerRun(family, setup, training, validation, work, changes)
            theirs, their_maps, their_seconds, lr = reference_run(
                family, setup, training, validation, work, reference_lr
            )
            ours, our_maps = trainer.result()
        row = {
            "family": family,
            "backbone": setup.backbone,
            "images": IMAGES,
            "epochs": setup.epochs,
            "trainer_changes": changes,
            "trainer_best_map": round(ours, 3),
            "reference_best_map": round(theirs, 3),
            "ratio": round(ours / theirs, 2) if theirs else None,
            "reference_lr": lr,
            "reference_lr_from": "given" if reference_lr else "lr_find",
            "trainer_seconds": round(trainer.seconds),
            "reference_seconds": round(their_seconds),
            "trainer_maps": [round(m, 3) for m in our_maps],
            "reference_maps": [round(m, 3) for m in their_maps],
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    print("| family | trainer's --hp | trainer best mAP | reference best mAP | ratio |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['family']} {row['backbone']} | {_words(changes) or 'none (the recipe)'} "
            f"| {row['trainer_best_map']} "
            f"| {row['reference_best_map']} | {row['ratio']} |"
        )


if __name__ == "__main__":
    from detrain import hyperparameter_options
    from detrain.cli_error import CliError

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("families", nargs="*", help=f"any of {', '.join(SETUPS)} (default: all)")
    hyperparameter_options.add_option(parser, "the trainer's side only")
    parser.add_argument(
        "--reference-lr", type=float, help="the reference's learning rate (default: lr_find's)"
    )
    arguments = parser.parse_args()
    unknown = sorted(set(arguments.families) - set(SETUPS))
    if unknown:
        parser.error(f"unknown family {', '.join(unknown)}: known are {', '.join(SETUPS)}")
    try:
        changes = hyperparameter_options.hyperparameter_strings(arguments.hp)
    except CliError as error:
        parser.error(str(error))
    main(arguments.families, changes, arguments.reference_lr)

"""The self-check's training jobs: the image's real ``train`` entry on tiny generated datasets.

Each family trains in its own temporary /opt/ml tree (contract/layout.py, written as SageMaker
writes it; ``SAGEMAKER_BASE_DIR`` points the child at it): 4 training images of the smallest
size the family takes, batch 2, one epoch (2 steps), then one validation batch of 2 images, the
smallest backbone, no pretrained weights, no loader workers. The model it saves is loaded back
through the detector.py shipped in the model folder, as a user would, and must give the
trainer's own detections. A last job gets a box outside its image and must fail as a user's
mistake (exit 1) with a failure file that names the box.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from contract import TRAINING_CHANNEL, VALIDATION_CHANNEL
from contract.families import family
from contract.hyperparameters import allowed_range
from contract.layout import BASE_DIR_VARIABLE, Layout, write_input_config
from contract.outputs import METRICS_JSON_FILE, MODEL_CONFIG_FILE, MODEL_LOADER_FILE
from contract.sagemaker import FILE_MODE, FULLY_REPLICATED
from trainer import sample_data
from trainer.errors import EXIT_USER_ERROR
from trainer.self_check import CheckFailed

TRAIN = Path(__file__).resolve().parents[1] / "train"  # /opt/program/train in the image
TRAINING_IMAGES, VALIDATION_IMAGES, BATCH_SIZE = 4, 2, 2  # one epoch: 2 steps, 1 validation batch
SMALLEST_IMAGE_SIZE = int(allowed_range("image_size")[0])
JOB_TIMEOUT_SECONDS = 600
OUTPUT_TAIL_LINES = 25
TOP_DETECTIONS = 10  # compared both ways, matched by label, score and box
BOX_TOLERANCE_PX = 0.5  # detector.py rounds its boxes to 0.1 px
SCORE_TOLERANCE = 1e-4  # relative, plus 1e-6 absolute
OUTSIDE_BOX_PROBLEM = "lie outside their image"  # trainer/data.py's words for such a box


def image_size(name: str) -> int:
    """The smallest image side the family takes (a multiple of its pyramid's stride)."""
    multiple = family(name).image_size_multiple
    return math.ceil(SMALLEST_IMAGE_SIZE / multiple) * multiple


def tiny_hyperparameters(name: str) -> dict[str, str]:
    """A job of two steps: the family's smallest backbone and image, from scratch."""
    return {
        "model": name,
        "backbone": family(name).backbones[0],
        "pretrained": "false",
        "epochs": "1",
        "batch_size": str(BATCH_SIZE),
        "image_size": str(image_size(name)),
        "num_workers": "0",
    }


def prepare(base: Path, hyperparameters: dict[str, str]) -> Layout:
    """A /opt/ml tree as SageMaker leaves it: config files, a training and a validation channel."""
    layout = Layout(base)
    size = int(hyperparameters["image_size"])
    sample_data.generate(layout.channel(TRAINING_CHANNEL), images=TRAINING_IMAGES, image_size=size)
    sample_data.generate(
        layout.channel(VALIDATION_CHANNEL), images=VALIDATION_IMAGES, image_size=size, seed=1
    )
    channel = {"TrainingInputMode": FILE_MODE, "S3DistributionType": FULLY_REPLICATED}
    write_input_config(
        layout,
        hyperparameters=hyperparameters,
        input_data_config={TRAINING_CHANNEL: channel, VALIDATION_CHANNEL: channel},
        resource_config={"current_host": "algo-1", "hosts": ["algo-1"]},
    )
    return layout


def run_train(layout: Layout, job_name: str) -> subprocess.CompletedProcess:
    """``train train``, as SageMaker starts it, against ``layout``; output captured."""
    env = {
        **os.environ,
        BASE_DIR_VARIABLE: str(layout.base),
        "TRAINING_JOB_NAME": job_name,
        # The interpreter running this check first: `train` starts with /usr/bin/env python3.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    return subprocess.run(
        [str(TRAIN), "train"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=JOB_TIMEOUT_SECONDS,
        check=False,
    )


def _tail(output: str) -> str:
    lines = output.rstrip().splitlines()[-OUTPUT_TAIL_LINES:]
    return "\n".join(f"    | {line}" for line in lines)


def _failure_text(layout: Layout) -> str | None:
    try:
        return layout.failure.read_text(encoding="utf-8")
    except OSError:
        return None


def judge_training(layout: Layout, returncode: int, output: str) -> str:
    """What a good tiny job leaves: exit 0, no failure file, one epoch's metrics, a model."""
    if returncode != 0:
        failure = (_failure_text(layout) or "no failure file").strip()[:600]
        raise CheckFailed(f"train exited {returncode}: {failure}\n{_tail(output)}")
    metrics_file = layout.output_data / METRICS_JSON_FILE
    try:
        rows = json.loads(metrics_file.read_text())
    except (OSError, ValueError) as error:
        raise CheckFailed(f"no metrics after the epoch ({metrics_file}: {error})") from None
    if len(rows) != 1 or not math.isfinite(rows[0].get("valid_loss", math.nan)):
        raise CheckFailed(f"expected one epoch with a finite valid_loss in {metrics_file}: {rows}")
    if not (layout.model / MODEL_CONFIG_FILE).is_file():
        raise CheckFailed(f"exit 0 but no finished model in {layout.model} (no config.json)")
    row = rows[0]
    return (
        f"{TRAINING_IMAGES} images in batches of {BATCH_SIZE}, train_loss {row['train_loss']:.3g}"
        f", valid_loss {row['valid_loss']:.3g} on {VALIDATION_IMAGES}"
    )


@dataclass
class FamilyJob:
    """One family's tiny job and the model it left."""

    name: str
    folder: Path

    @property
    def layout(self) -> Layout:
        return Layout(self.folder / "opt-ml")

    def train(self) -> str:
        hyperparameters = tiny_hyperparameters(self.name)
        prepare(self.layout.base, hyperparameters)
        result = run_train(self.layout, f"self-check-{self.name.replace('_', '-')}")
        detail = judge_training(self.layout, result.returncode, result.stdout)
        return f"{hyperparameters['backbone']}, {hyperparameters['image_size']} px: {detail}"

    def compare_detector(self) -> str:
        if not (self.layout.model / MODEL_CONFIG_FILE).is_file():
            raise CheckFailed("no model to load: the training check failed")
        ours, theirs, images = detections_both_ways(self.layout)
        count = sum(len(found) for found in ours)
        if count == 0:
            raise CheckFailed("the trainer's model detects nothing: nothing to compare")
        for index, (expected, found) in enumerate(zip(ours, theirs, strict=True)):
            problem = compare(expected, found)
            if problem:
                raise CheckFailed(f"{images[index]}: {problem}")
        return f"the same {count} detections on {len(images)} images (threshold 0)"


def load_shipped_detector(model_dir: Path):
    """The model folder's detector.py, loaded as a file the way a user loads it."""
    spec = importlib.util.spec_from_file_location("shipped_detector", model_dir / MODEL_LOADER_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Detector.load(model_dir)


def keep_every_candidate(module) -> None:
    """After two steps from scratch every score lies under torchvision's detection threshold
    (0.05): at 0, both sides keep their candidates and the comparison is never empty."""
    for layer in module.modules():
        if hasattr(layer, "score_thresh"):
            layer.score_thresh = 0.0


Detection = tuple[str, float, np.ndarray]  # label, score, box (xyxy, the image's pixels)


def detections_both_ways(layout: Layout) -> tuple[list, list, list[str]]:
    """The trainer's detections on the validation images (its own validation path: dataset,
    loader, model, mapped back to the image's pixels) and detector.py's, per image."""
    import torch

    from trainer import batches, dataset, families, icevision_patches, report, tables
    from trainer import model as models

    config = json.loads((layout.model / MODEL_CONFIG_FILE).read_text())
    shipped = load_shipped_detector(layout.model)
    classes = list(shipped.classes)  # ["background", *names]
    icevision_patches.apply()
    name, size = config["model"], config["image_size"]
    module = models.build_module(name, config["backbone"], len(classes), size, pretrained=False)
    weights = torch.load(layout.model / config["weights"], map_location="cpu", weights_only=True)
    families.get(name).exported(module).load_state_dict(weights)
    model = models.DetectionModel(name, config["backbone"], size, tuple(classes[1:]), module)
    keep_every_candidate(model.module)
    keep_every_candidate(shipped.model)
    table = tables.load(layout.channel(VALIDATION_CHANNEL), model.class_names)
    loader = batches.loader(
        dataset.build(table, size, train=False), name, train=False, batch_size=BATCH_SIZE
    )
    predicted = report.predict(model, loader, table, torch.device("cpu"))
    ours = [
        [(classes[int(label)], float(score), box) for box, score, label in zip(*p, strict=True)]
        for p in predicted
    ]
    images = [str(path) for path in table.paths]
    theirs = [
        [(d["label"], d["score"], np.asarray(d["box"])) for d in found]
        for found in shipped.predict(images, threshold=0.0)
    ]
    return ours, theirs, images


def _matches(one: Detection, other: Detection) -> bool:
    (label, score, box), (other_label, other_score, other_box) = one, other
    return (
        label == other_label
        and abs(score - other_score) <= SCORE_TOLERANCE * max(score, other_score) + 1e-6
        and float(np.abs(np.asarray(box) - np.asarray(other_box)).max()) <= BOX_TOLERANCE_PX
    )


def compare(expected: list[Detection], found: list[Detection]) -> str | None:
    """None when detector.py found what the trainer found (same count; each side's top
    detections matched in the other's), else what differs."""
    if len(expected) != len(found):
        return f"the trainer detects {len(expected)} objects, detector.py {len(found)}"
    for side, top, other in (("trainer's", expected, found), ("detector.py's", found, expected)):
        for detection in sorted(top, key=lambda d: -d[1])[:TOP_DETECTIONS]:
            if not any(_matches(detection, candidate) for candidate in other):
                label, score, box = detection
                return (
                    f"the {side} detection {label} {score:.4g} at "
                    f"{np.round(np.asarray(box, dtype=float), 1).tolist()} has no match "
                    f"(within {BOX_TOLERANCE_PX} px) on the other side"
                )
    return None


def judge_bad_dataset(returncode: int, failure: str | None, model_left: bool) -> str:
    """A bad dataset must end as a user's mistake: exit 1, a failure file naming the box's
    problem, no model. Raises CheckFailed otherwise (an exit 0 above all)."""
    if returncode == 0:
        raise CheckFailed("train accepted a dataset with a box outside its image (exit 0)")
    if returncode != EXIT_USER_ERROR:
        raise CheckFailed(
            f"train exited {returncode} on a bad dataset; expected {EXIT_USER_ERROR} "
            f"(a user's mistake): {(failure or 'no failure file')[:400]}"
        )
    if failure is None:
        raise CheckFailed(f"train exited {returncode} but wrote no failure file")
    if OUTSIDE_BOX_PROBLEM not in failure:
        raise CheckFailed(f"the failure file does not name the box: {failure[:400]!r}")
    if model_left:
        raise CheckFailed("a failed job left a model in the model folder")
    return f"exit {returncode}, failure file: {failure.strip()[:160]}"


def bad_dataset(folder: Path, name: str) -> str:
    """A tiny ``name`` job whose first box reaches past its image's right edge."""
    hyperparameters = tiny_hyperparameters(name)
    layout = prepare(folder / "opt-ml", hyperparameters)
    annotations = layout.channel(TRAINING_CHANNEL) / sample_data.ANNOTATIONS_FILENAME
    coco = json.loads(annotations.read_text())
    width = coco["images"][0]["width"]
    box = coco["annotations"][0]["bbox"]
    box[0], box[2] = width - 4, 24  # 20 px past the edge
    annotations.write_text(json.dumps(coco))
    result = run_train(layout, "self-check-bad-dataset")
    model_left = (layout.model / MODEL_CONFIG_FILE).exists()
    return judge_bad_dataset(result.returncode, _failure_text(layout), model_left)

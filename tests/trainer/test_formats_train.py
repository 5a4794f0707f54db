"""`train train` end to end on a YOLO (Ultralytics, Roboflow-style) folder and on a Ground Truth
manifest."""

import json

import pytest

from tests.support.converters import coco_to_manifest, coco_to_yolo
from tests.support.opt_ml import TINY, run_train
from tests.support.synthetic import write_coco

pytestmark = pytest.mark.slow


def test_yolo_folder_with_its_own_splits_trains_end_to_end(opt_ml, tmp_path):
    """A Roboflow-style export: data.yaml, train/ and valid/; valid/ is the validation set."""
    write_coco(tmp_path / "train", 6, seed=0)
    write_coco(tmp_path / "valid", 3, seed=1)
    coco_to_yolo(tmp_path / "train", opt_ml.channel("training"), "train")
    coco_to_yolo(tmp_path / "valid", opt_ml.channel("training"), "valid")
    opt_ml.declare_channels("training")
    opt_ml.hyperparameters({**TINY, "epochs": "2", "valid_fraction": "0.25"})

    result = run_train(opt_ml)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "YOLO layout" in result.stdout + result.stderr
    assert "6 training images, 3 validation images" in result.stdout
    class_map = json.loads((opt_ml.model_dir / "class_map.json").read_text())
    assert class_map == ["background", "red", "green"]


def test_ground_truth_manifest_trains_end_to_end(opt_ml, tmp_path):
    write_coco(tmp_path / "coco", 8)
    coco_to_manifest(tmp_path / "coco", opt_ml.channel("training"))
    opt_ml.declare_channels("training")
    opt_ml.hyperparameters({**TINY, "epochs": "1", "valid_fraction": "0.25"})

    result = run_train(opt_ml)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "training: Ground Truth layout, 8 images" in result.stdout
    assert (opt_ml.model_dir / "model.pt").is_file()

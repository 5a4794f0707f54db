"""`train train` on a YOLO (Ultralytics, Roboflow-style) folder with its own splits, in this
process: the entry takes the dataset's valid/ split as the validation set.

Reading each format into the same table is proven in test_formats.py (a Ground Truth manifest
and a YOLO folder read what COCO reads); training on a table does not depend on its format.
"""

import json
import logging

import pytest

from tests.support.converters import coco_to_yolo
from tests.support.opt_ml import TINY, run_main
from tests.support.synthetic import write_coco

pytestmark = pytest.mark.slow


def test_yolo_folder_with_its_own_splits_trains_end_to_end(opt_ml, tmp_path, caplog):
    """A Roboflow-style export: data.yaml, train/ and valid/; valid/ is the validation set."""
    caplog.set_level(logging.INFO)
    write_coco(tmp_path / "train", 6, seed=0)
    write_coco(tmp_path / "valid", 3, seed=1)
    coco_to_yolo(tmp_path / "train", opt_ml.channel("training"), "train")
    coco_to_yolo(tmp_path / "valid", opt_ml.channel("training"), "valid")
    opt_ml.declare_channels("training")
    opt_ml.hyperparameters({**TINY, "epochs": "2", "valid_fraction": "0.25"})

    assert run_main(opt_ml) == 0, caplog.text[-3000:]

    assert "training: YOLO layout (train split), 6 images" in caplog.text
    assert "6 training images, 3 validation images" in caplog.text
    class_map = json.loads((opt_ml.model_dir / "class_map.json").read_text())
    assert class_map == ["background", "red", "green"]

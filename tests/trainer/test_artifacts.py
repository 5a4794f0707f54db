"""The model folder: detector.py rebuilds the torchvision families from model.pt alone."""

import importlib.util
import json

import numpy as np
import pytest
import torch
from PIL import Image

from contract.hyperparameters import from_values
from contract.outputs import MODEL_LOADER_FILE
from trainer import artifacts
from trainer import model as models


def _standalone_detector(model_dir):
    spec = importlib.util.spec_from_file_location("detector", model_dir / MODEL_LOADER_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Detector


@pytest.mark.parametrize("name", ["faster_rcnn", "retinanet"])
def test_the_loader_rebuilds_what_was_trained(tmp_path, name):
    hp = from_values(
        {"model": name, "backbone": "resnet18_fpn", "pretrained": False, "image_size": 128}
    )
    torch.manual_seed(0)
    trained = models.create(hp, ("red", "green"))
    artifacts.save_model(tmp_path, trained, summary={"epochs": 1})

    detector = _standalone_detector(tmp_path).load(tmp_path)

    assert json.loads((tmp_path / "config.json").read_text())["num_classes"] == 3
    image = Image.fromarray(np.full((80, 96, 3), 128, dtype=np.uint8))
    pixels = torch.from_numpy(detector._prepare(image)[0])
    with torch.no_grad():
        expected = trained.module.eval()([pixels])[0]
        found = detector.model([pixels])[0]
    assert torch.equal(expected["boxes"], found["boxes"])
    assert torch.equal(expected["scores"], found["scores"])
    labels = {d["label"] for d in detector.predict([image], threshold=0.0)[0]}
    assert labels <= {"red", "green"}

"""The model-family registry: one entry per family, the contract's facts and the trainer's code
under the same names, and an unknown name refused everywhere (it once built Faster R-CNN)."""

import json

import pytest

from contract import families as facts
from contract.families import FAMILIES, UnknownFamily
from trainer import families, standalone_detector
from trainer import model as models


def test_the_trainer_the_contract_and_the_standalone_loader_know_the_same_families():
    assert list(families.REGISTRY) == list(FAMILIES) == list(standalone_detector.FAMILIES)
    for name, family in families.REGISTRY.items():
        assert family.facts is FAMILIES[name]
        assert family.facts.default_backbone in family.facts.backbones


@pytest.mark.parametrize(
    "refuse",
    [
        facts.family,
        families.get,
        models.model_type,
        lambda name: models.build_module(name, "resnet18_fpn", 2, 128, pretrained=False),
        lambda name: models.detections(name, []),
    ],
    ids=["contract", "registry", "model_type", "build_module", "detections"],
)
def test_an_unknown_family_is_an_error_naming_the_known_ones(refuse):
    with pytest.raises(UnknownFamily, match="'yolo' is unknown; allowed: faster_rcnn, retinanet"):
        refuse("yolo")


def test_the_standalone_loader_refuses_an_unknown_family(tmp_path):
    (tmp_path / "classes.json").write_text(json.dumps(["background", "cat"]))
    config = {"format": 1, "model": "yolo", "backbone": "x", "class_map": "classes.json"}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="'yolo' is unknown; allowed: faster_rcnn, retinanet"):
        standalone_detector.Detector.load(tmp_path)

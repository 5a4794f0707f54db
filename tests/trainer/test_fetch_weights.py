import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from fetch_weights import selected

from trainer import baked_weights
from trainer.errors import ConfigError
from trainer.model import build_module

SCRIPT = Path(__file__).resolve().parents[2] / "training_image" / "fetch_weights.py"


def test_selection_of_weights_to_bake():
    assert ("faster_rcnn", "resnet18_fpn") in selected([]) and selected(["all"]) == selected([])
    assert selected(["none"]) == []
    assert selected(["efficientdet/tf_lite0"]) == [("efficientdet", "tf_lite0")]
    with pytest.raises(
        SystemExit, match=r"unknown model/backbone efficientdet/resnet18_fpn; allowed"
    ):
        selected(["efficientdet/resnet18_fpn"])


@pytest.mark.parametrize(
    ("model", "backbone"), [("faster_rcnn", "resnet18_fpn"), ("efficientdet", "tf_lite0")]
)
def test_pretrained_weights_missing_from_the_cache_are_a_clear_error(
    tmp_path, monkeypatch, model, backbone
):
    """This machine has no internet, like a network-isolated job whose image lacks the weights."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(
        "socket.socket.connect", lambda *a, **k: (_ for _ in ()).throw(OSError("blocked"))
    )
    with pytest.raises(
        ConfigError, match=rf"pretrained weights for {model}/{backbone} are not in this image"
    ):
        build_module(model, backbone, 3, 128, pretrained=True)


def test_baked_weights_load_with_the_network_blocked(tmp_path, monkeypatch):
    """A cache laid out as fetch_weights leaves it; the script's check pass blocks sockets."""
    from torchvision.models import ResNet18_Weights, resnet18

    weights = ResNet18_Weights.IMAGENET1K_V1
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    baked_file = cache / weights.url.rsplit("/", 1)[1]
    torch.save(resnet18().state_dict(), baked_file)
    manifest = tmp_path / "weights" / "manifest.json"
    env = {
        **os.environ,
        "TORCH_HOME": str(tmp_path),
        "HOME": str(tmp_path),
        baked_weights.MANIFEST_VARIABLE: str(manifest),
    }
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "faster_rcnn/resnet18_fpn"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=SCRIPT.parent,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "1 pretrained models load without network" in result.stdout
    assert (tmp_path / ".icevision" / "fonts" / "SpaceGrotesk-Medium.ttf").is_file()
    baked = json.loads(manifest.read_text())
    assert baked["models"] == ["faster_rcnn/resnet18_fpn"]
    assert {"path": str(baked_file), "bytes": baked_file.stat().st_size} in baked["files"]

    # What the image's self-check then proves from the manifest (trainer/baked_weights.py).
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert baked_weights.check(manifest).startswith("1 models load their baked weights offline")
    baked_file.unlink()
    with pytest.raises(baked_weights.WeightsMissing, match=f"{baked_file.name} is missing"):
        baked_weights.check(manifest)

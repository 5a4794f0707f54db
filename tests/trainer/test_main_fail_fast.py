"""`train train` fails in the first minute, never after a paid epoch (issue 10); in this
process (``run_main``), as the failure handling is the entry's, not the process's."""

import importlib.util
import logging
import re
import shutil
from pathlib import Path

import pytest

from tests.support.opt_ml import TINY, run_main
from tests.support.synthetic import write_voc
from trainer import errors

pytestmark = pytest.mark.slow


def _corrupt_middle(path: Path) -> None:
    """Header and end marker intact, so only a full decode finds it."""
    content = bytearray(path.read_bytes())
    middle = len(content) // 2
    content[middle : middle + 200] = bytes(200)
    path.write_bytes(bytes(content))


def _one_class(folder: Path) -> None:
    for xml in (folder / "annotations").glob("*.xml"):
        xml.write_text(xml.read_text().replace("<name>green</name>", "<name>red</name>"))


def _add_small_scene(folder: Path, tmp_path: Path, name: str) -> Path:
    """A 64x48 scene (smaller than the others, so the preflight never picks it)."""
    small = write_voc(tmp_path / "small", 1, seed=9, size=(64, 48))
    shutil.copy(small / "images" / "scene_000.png", folder / "images" / f"{name}.png")
    xml = (small / "annotations" / "scene_000.xml").read_text()
    (folder / "annotations" / f"{name}.xml").write_text(xml.replace("scene_000", name))
    return folder / "images" / f"{name}.png"


@pytest.fixture
def log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO)
    return caplog


def _shipped_detector(model_dir: Path):
    """The model folder's own detector.py, loaded from its file as a user's program would."""
    spec = importlib.util.spec_from_file_location("shipped_detector", model_dir / "detector.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Detector


def _checkpointed(opt_ml) -> Path:
    opt_ml.write_config("checkpointconfig.json", {"LocalPath": "/opt/ml/checkpoints"})
    folder = opt_ml.base / "checkpoints"
    folder.mkdir()
    return folder


def test_an_image_that_breaks_the_first_batch_fails_in_the_preflight(opt_ml, log):
    training = write_voc(opt_ml.channel("training"), 6)
    big = write_voc(opt_ml.base / "big", 1, seed=5, size=(160, 120))
    shutil.copy(big / "images" / "scene_000.png", training / "images" / "scene_big.png")
    xml = (big / "annotations" / "scene_000.xml").read_text().replace("scene_000", "scene_big")
    (training / "annotations" / "scene_big.xml").write_text(xml)
    _corrupt_middle(training / "images" / "scene_big.png")
    opt_ml.hyperparameters({**TINY, "batch_size": "2", "epochs": "3"})

    assert run_main(opt_ml) == errors.EXIT_USER_ERROR, log.text[-3000:]

    failure = opt_ml.failure.read_text()
    assert re.match(r"DataError: image \S+/images/scene_big.png cannot be decoded", failure)
    assert "max_bad_images" in failure and "Traceback" not in failure
    assert "Preflight" in log.text and "Start training" not in log.text


def test_a_bad_image_mid_epoch_keeps_a_checkpoint_and_max_bad_images_finishes(
    opt_ml, tmp_path, log
):
    """EfficientDet, one class, image_size 128: its validation used to crash in effdet's top-k."""
    training = write_voc(opt_ml.channel("training"), 6)
    bad = _add_small_scene(training, tmp_path, "scene_bad")
    _corrupt_middle(bad)
    validation = write_voc(opt_ml.channel("validation"), 2, seed=3)
    _one_class(training)
    _one_class(validation)
    opt_ml.declare_channels("training", "validation")
    checkpoints = _checkpointed(opt_ml)
    opt_ml.hyperparameters({**TINY, "batch_size": "2", "epochs": "1"})

    assert run_main(opt_ml) == errors.EXIT_USER_ERROR, log.text[-3000:]

    assert re.match(
        r"DataError: image \S+/scene_bad.png cannot be decoded", opt_ml.failure.read_text()
    )
    assert "Start training" in log.text
    saved = [p.name for p in checkpoints.iterdir()]
    assert len(saved) == 1 and saved[0].startswith("checkpoint-e0000-s"), saved

    opt_ml.failure.unlink()
    opt_ml.hyperparameters({**TINY, "batch_size": "2", "epochs": "1", "max_bad_images": "1"})
    log.clear()
    assert run_main(opt_ml) == 0, log.text[-3000:]

    assert f"resuming from {saved[0]}" in log.text
    assert "skipping unreadable image" in log.text and "scene_bad.png" in log.text
    detector = _shipped_detector(opt_ml.model_dir).load(opt_ml.model_dir)
    found = detector.predict([training / "images" / "scene_000.png"], threshold=0.0)[0]
    assert len(found) > 0  # the shipped detector, one class at 128 px, predicts


def test_a_bad_validation_image_keeps_the_trained_epoch(opt_ml, tmp_path, log):
    write_voc(opt_ml.channel("training"), 4)
    validation = write_voc(opt_ml.channel("validation"), 2, seed=3)
    _corrupt_middle(_add_small_scene(validation, tmp_path, "scene_bad"))
    opt_ml.declare_channels("training", "validation")
    checkpoints = _checkpointed(opt_ml)
    # A DataLoader worker: the DataError crosses a process and keeps a one-line message.
    opt_ml.hyperparameters({**TINY, "batch_size": "2", "num_workers": "1"})

    assert run_main(opt_ml) == errors.EXIT_USER_ERROR, log.text[-3000:]

    failure = opt_ml.failure.read_text()
    assert re.fullmatch(r"DataError: image \S+/scene_bad.png cannot be decoded .*", failure)
    assert "\n" not in failure
    assert [p.name for p in checkpoints.iterdir()] == ["checkpoint-e0000-s000002.pt"]

"""The preflight: the largest images through a training and a validation step, then timed warm
steps for the estimate; state restored after."""

import dataclasses
import json
import logging
import random
import re
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from contract.hyperparameters import Hyperparameters
from contract.outputs import MAX_RUNTIME_VARIABLE
from tests.support.synthetic import write_coco
from trainer import engine, preflight, tables
from trainer import model as models
from trainer.errors import ConfigError

CPU = torch.device("cpu")


def _table(folder: Path, classes: int, count: int = 2) -> tables.DetectionTable:
    """``count`` generated images whose COCO file declares ``classes`` classes."""
    path = write_coco(folder, count)
    doc = json.loads(path.read_text())
    doc["categories"] = [{"id": i + 1, "name": f"class{i + 1}"} for i in range(classes)]
    for annotation in doc["annotations"]:
        annotation["category_id"] = min(annotation["category_id"], classes)
    path.write_text(json.dumps(doc))
    return tables.load(folder)


def _preflight(detector: models.DetectionModel, table, hp: Hyperparameters, **overrides):
    optimizer = engine.optimizer(detector, hp)
    scheduler = engine.schedule(optimizer, 10, hp.epochs)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    arguments = {
        "train_table": table,
        "valid_table": table,
        "hp": hp,
        "device": CPU,
        "optimizer": optimizer,
        "scheduler": scheduler,
        "scaler": scaler,
        "train_steps": 10,
        "valid_steps": 1,
        "epochs_left": hp.epochs,
        **overrides,
    }
    return preflight.run(detector, **arguments), optimizer, scheduler


TINY = Hyperparameters(
    model="efficientdet",
    backbone="tf_lite0",
    pretrained=False,
    epochs=3,
    batch_size=2,
    image_size=128,
    num_workers=0,
)


def test_preflight_leaves_model_optimizer_schedule_and_randomness_as_they_were(tmp_path):
    table = _table(tmp_path, classes=2, count=3)
    torch.manual_seed(0)
    detector = models.create(TINY, table.class_names)
    before = {k: v.clone() for k, v in detector.module.state_dict().items()}
    random.seed(5)
    np.random.seed(5)
    torch.manual_seed(5)
    expected_draws = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(5)
    np.random.seed(5)
    torch.manual_seed(5)

    estimate, optimizer, scheduler = _preflight(detector, table, TINY)

    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected_draws
    after = detector.module.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert optimizer.state_dict()["state"] == {}
    assert scheduler.last_epoch == 0 and optimizer.param_groups[0]["lr"] == pytest.approx(
        TINY.learning_rate * 0.001
    )
    assert all(p.grad is None for p in detector.module.parameters())
    assert estimate.train_step > 0 and estimate.valid_step > 0
    assert estimate.job == pytest.approx(3 * (10 * estimate.train_step + estimate.valid_step))


class _Clock:
    """``time`` for the preflight, whose ``perf_counter`` jumps when ``slow`` is called."""

    def __init__(self) -> None:
        self.offset = 0.0

    def perf_counter(self) -> float:
        return time.perf_counter() + self.offset

    def slow(self, function, calls: set[int]):
        """``function``, 100 s slower (on this clock) on the given calls, counted from 1."""
        count = []

        def wrapped(*args, **kwargs):
            count.append(1)
            if len(count) in calls:
                self.offset += 100.0
            return function(*args, **kwargs)

        wrapped.count = count
        return wrapped


def test_cold_first_steps_and_one_slow_step_do_not_decide_the_estimate(tmp_path, monkeypatch):
    table = _table(tmp_path, classes=2, count=3)
    detector = models.create(TINY, table.class_names)
    clock = _Clock()
    monkeypatch.setattr(preflight, "time", clock)
    train = clock.slow(engine.train_one_epoch, {1, 3})  # the cold step, then a timed one
    validate = clock.slow(engine.validate, {1})
    monkeypatch.setattr(engine, "train_one_epoch", train)
    monkeypatch.setattr(engine, "validate", validate)

    estimate, _, _ = _preflight(detector, table, TINY)  # 3 epochs of 10 steps: 3 timed

    assert estimate.train_step < 100 and estimate.valid_step < 100
    assert (len(train.count), len(validate.count)) == (4, 4)


@dataclasses.dataclass
class _SmallGpu(models.DetectionModel):
    """A model whose device holds at most two images per batch (out-of-memory beyond)."""

    def losses(self, batch, device):
        images, _ = batch
        if len(images) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return super().losses(batch, device)


def test_out_of_memory_names_the_largest_batch_size_that_fits(tmp_path):
    table = _table(tmp_path, classes=2, count=3)
    hp = dataclasses.replace(TINY, batch_size=11)
    detector = models.create(hp, table.class_names)
    small = _SmallGpu(**{f.name: getattr(detector, f.name) for f in dataclasses.fields(detector)})
    before = {k: v.clone() for k, v in small.module.state_dict().items()}

    with pytest.raises(
        ConfigError,
        match=r"^batch_size 11 at image_size 128 does not fit in this machine's \d+ GiB; "
        r"the largest that fits is about 2$",
    ):
        _preflight(small, table, hp)

    assert all(torch.equal(before[k], v) for k, v in small.module.state_dict().items())


def test_the_estimate_warns_when_it_exceeds_max_runtime(tmp_path, monkeypatch, caplog):
    table = _table(tmp_path, classes=2)
    detector = models.create(TINY, table.class_names)
    caplog.set_level(logging.INFO, logger="trainer.preflight")
    monkeypatch.setattr(preflight, "MOST_TIMED_STEPS", 0)  # the cold steps will do: keep it short

    _preflight(detector, table, TINY, train_steps=100_000)
    assert "will take about" in caplog.text and "MaxRuntime" not in caplog.text

    monkeypatch.setenv(MAX_RUNTIME_VARIABLE, "3600")
    _preflight(detector, table, TINY, train_steps=100_000)
    assert re.search(
        r"the estimated training time, about \d+ h \d\d min, exceeds this job's MaxRuntime "
        r"of 60 min \(3600 s\)",
        caplog.text,
    )


# Each model x backbone, with one class and with many, through the preflight: the image's
# self-check (trainer/self_check_matrix.py; every backbone at build time, each family's first in
# the suite: test_self_check.py::test_the_self_check_passes_from_the_venv).

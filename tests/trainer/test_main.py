"""The entry, as SageMaker runs it: `train train` against a fake /opt/ml.

The entry's decisions (which failure, which exit code, what is left in /opt/ml) are tested in
this process (``run_main``); the process itself (a SIGTERM from outside, a resume in a new
process) as a subprocess (``run_train``). What a finished job leaves is read from the
session's one finished job (test_finished_job.py).
"""

import dataclasses
import json
import logging
import os
import re
import signal
import subprocess
import time

import pytest
import torch

from tests.support.finished_job import metric_lines
from tests.support.opt_ml import TINY, TRAIN, run_main, run_train, train_env
from tests.support.synthetic import write_coco, write_voc
from trainer import artifacts, engine, errors
from trainer import main as trainer_main


@pytest.fixture
def log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """The trainer's log of an in-process run (its INFO lines included)."""
    caplog.set_level(logging.INFO)
    return caplog


@pytest.mark.slow
def test_raw_string_voc_with_validation_channel_faster_rcnn(opt_ml, log, capsys):
    write_voc(opt_ml.channel("training"), 6, seed=1)
    write_voc(opt_ml.channel("validation"), 2, seed=2)
    opt_ml.declare_channels("training", "validation")
    opt_ml.hyperparameters(
        {**TINY, "model": "faster_rcnn", "backbone": "resnet18_fpn", "batch_size": "2"}
    )

    assert run_main(opt_ml) == 0, log.text[-3000:]

    assert "6 training images, 2 validation images" in log.text
    assert len(metric_lines(capsys.readouterr().out)) == 1
    config = json.loads((opt_ml.model_dir / "config.json").read_text())
    assert (config["model"], config["backbone"]) == ("faster_rcnn", "resnet18_fpn")
    assert (opt_ml.output_data / "report.html").is_file()
    assert (opt_ml.output_data / "report_classes.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["coco-sample", "fridge-voc", "voc-sample"])
def test_shared_datasets_train(opt_ml, shared_datasets, dataset, log, capsys):
    opt_ml.channel("training").rmdir()
    (opt_ml.base / "input" / "data" / "training").symlink_to(shared_datasets / dataset)
    opt_ml.hyperparameters({**TINY, "batch_size": "2", "valid_fraction": "0.4"})

    assert run_main(opt_ml) == 0, log.text[-3000:]

    assert len(metric_lines(capsys.readouterr().out)) == 1
    assert (opt_ml.model_dir / "config.json").is_file()


def test_decode_on_device_trains_through_the_device_path_and_says_so(opt_ml):
    write_coco(opt_ml.channel("training"), 8)  # JPEGs: they reach the device as bytes
    opt_ml.hyperparameters({**TINY, "decode_on": "device", "num_workers": "1"})

    result = run_train(opt_ml)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "JPEGs decoded on cpu (decode_on=device)" in result.stdout
    assert len(metric_lines(result.stdout)) == 1


@pytest.mark.parametrize(
    ("hyperparameters", "make_data", "failure"),
    [
        (
            {"model": "yolo"},
            True,
            "ConfigError: hyperparameter 'model' = 'yolo' is not supported; "
            "allowed: faster_rcnn, retinanet, efficientdet",
        ),
        (
            {"epochs": "0"},
            True,
            "ConfigError: hyperparameter 'epochs' = 0 is out of range; allowed: 1 to 1000",
        ),
        (
            {"learning_rate": "fast"},
            True,
            "ConfigError: hyperparameter 'learning_rate' = 'fast' must be a number",
        ),
        (
            {"epoch": "3"},
            True,
            "ConfigError: unknown hyperparameter 'epoch'; allowed: model, backbone,",
        ),
        ({}, False, "DataError: channel 'training' holds neither COCO"),
    ],
)
def test_bad_input_fails_with_a_short_reason_and_no_model(
    opt_ml, hyperparameters, make_data, failure
):
    if make_data:
        write_coco(opt_ml.channel("training"), 3)
    else:
        opt_ml.channel("training")
    opt_ml.hyperparameters({**TINY, **hyperparameters})
    opt_ml.model_dir.mkdir()
    (opt_ml.model_dir / "model.pt").write_bytes(b"left over")

    assert run_main(opt_ml) == errors.EXIT_USER_ERROR

    text = opt_ml.failure.read_text()
    assert text.startswith(failure) and "Traceback" not in text and len(text) < 1024
    assert list(opt_ml.model_dir.iterdir()) == []


def test_bad_data_fails_before_training(opt_ml, log):
    write_coco(opt_ml.channel("training"), 4)
    (opt_ml.channel("training") / "images" / "img_0002.jpg").unlink()
    opt_ml.hyperparameters(TINY)

    assert run_main(opt_ml) == errors.EXIT_USER_ERROR

    assert opt_ml.failure.read_text().startswith(
        "DataError: 1 of 4 images named in annotations.json are missing"
    )
    assert "Loading data" in log.text and "Creating model" not in log.text


def test_unexpected_argument_and_missing_channel(opt_ml):
    opt_ml.hyperparameters(TINY)
    assert run_main(opt_ml, "--epochs") == errors.EXIT_USER_ERROR
    assert opt_ml.failure.read_text().startswith("ConfigError: unexpected arguments ['--epochs']")
    assert run_main(opt_ml) == errors.EXIT_USER_ERROR
    assert (
        opt_ml.failure.read_text()
        == "ConfigError: the 'training' channel is required; found: no channels"
    )


def test_a_bug_writes_the_traceback(opt_ml, monkeypatch):
    opt_ml.channel("training")
    monkeypatch.setenv("SAGEMAKER_BASE_DIR", str(opt_ml.base))

    def broken():
        raise ZeroDivisionError("division by zero in the loop")

    monkeypatch.setattr(trainer_main, "train", broken)
    assert trainer_main.main(["train"]) == errors.EXIT_BUG
    text = opt_ml.failure.read_text()
    assert text.startswith("ZeroDivisionError: division by zero in the loop\n\nTraceback")


def test_a_bad_cluster_override_fails_before_training(opt_ml, monkeypatch):
    opt_ml.channel("training")
    monkeypatch.setenv("SAGEMAKER_BASE_DIR", str(opt_ml.base))
    monkeypatch.setenv("DETRAIN_PROCESSES_PER_HOST", "0")
    trained = []
    monkeypatch.setattr(trainer_main, "train", lambda: trained.append(True))

    assert trainer_main.main(["train"]) == errors.EXIT_USER_ERROR

    assert trained == []
    assert opt_ml.failure.read_text().startswith(
        "ConfigError: environment variable DETRAIN_PROCESSES_PER_HOST = '0' is not allowed"
    )


@pytest.mark.slow
def test_sigterm_mid_epoch_checkpoints_then_resume_finishes(opt_ml):
    write_coco(opt_ml.channel("training"), 48)
    opt_ml.hyperparameters({**TINY, "epochs": "2", "batch_size": "2", "valid_fraction": "0.1"})
    process = subprocess.Popen(
        [str(TRAIN), "train"],
        env=train_env(opt_ml),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen = []
    for line in process.stdout:
        seen.append(line)
        if "Start training" in line:
            time.sleep(1.0)  # a few steps into epoch 1 (it has 22)
            process.send_signal(signal.SIGTERM)
            break
    rest, _ = process.communicate(timeout=300)
    log = "".join(seen) + rest

    assert process.returncode == trainer_main.EXIT_STOPPED, log[-3000:]
    assert "received SIGTERM" in log and "[metrics]" not in log
    reason = opt_ml.failure.read_text()
    assert re.match(
        r"TrainingStopped: stopped by SIGTERM in epoch 1 at step \d+; checkpoint saved", reason
    )
    step = int(re.search(r"at step (\d+)", reason).group(1))
    saved = [p.name for p in (opt_ml.base / "checkpoints").iterdir()]
    assert saved == [f"checkpoint-e0000-s{step:06d}.pt"]
    assert not opt_ml.model_dir.exists() or not any(opt_ml.model_dir.iterdir())

    opt_ml.failure.unlink()
    result = run_train(opt_ml)

    assert result.returncode == 0, result.stdout[-3000:]
    assert f"resuming from checkpoint-e0000-s{step:06d}.pt (epoch 1, step {step})" in result.stdout
    assert [m["epoch"] for m in metric_lines(result.stdout)] == [1, 2]
    assert (opt_ml.model_dir / "config.json").is_file()


def _weights_equal(model_pt, state: dict) -> bool:
    """model.pt (EfficientDet without its training bench) against a whole module's state."""
    shipped = torch.load(model_pt, weights_only=True)
    return all(torch.equal(value, state[f"model.{key}"]) for key, value in shipped.items())


def _sigterm_after_the_first_epoch(monkeypatch) -> None:
    """SIGTERM to this process once epoch 1's metrics are saved, as SageMaker's stop would."""
    save_metrics = artifacts.save_metrics

    def save_then_stop(output_dir, history):
        save_metrics(output_dir, history)
        if len(history) == 1:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(artifacts, "save_metrics", save_then_stop)


def _validation_scores_fall_after_the_first_epoch(monkeypatch) -> None:
    """The first validation of the test scores 0.5, every later one 0.1 (resumes included)."""
    validate = engine.validate
    runs = {"calls": 0}

    def falling(*args, **kwargs):
        result = validate(*args, **kwargs)
        runs["calls"] += 1
        return dataclasses.replace(result, map=0.5 if runs["calls"] == 1 else 0.1)

    monkeypatch.setattr(engine, "validate", falling)


@pytest.mark.slow
def test_sigterm_keeps_the_best_epoch_then_resume_selects_and_stops_early(
    opt_ml, monkeypatch, log, capsys
):
    write_coco(opt_ml.channel("training"), 10)
    # No epoch improves on the first (the real validation runs; its score is replaced by one
    # that falls with each epoch, as a tiny model's noisy mAP may not), so patience 1 stops
    # the run after epoch 2 (of 4), and epoch 1 is the model.
    _validation_scores_fall_after_the_first_epoch(monkeypatch)
    opt_ml.hyperparameters({**TINY, "epochs": "4", "early_stopping_patience": "1"})
    with monkeypatch.context() as stopping:
        _sigterm_after_the_first_epoch(stopping)
        assert run_main(opt_ml) == trainer_main.EXIT_STOPPED, log.text[-3000:]

    assert "received SIGTERM" in log.text
    assert re.match(
        r"TrainingStopped: stopped by SIGTERM in epoch 2 at step \d+; checkpoint saved; "
        r"the model is epoch 1's \(valid_map ",
        opt_ml.failure.read_text(),
    )
    config = json.loads((opt_ml.model_dir / "config.json").read_text())
    assert config["training"]["model_epoch"]["epoch"] == 1
    best = torch.load(opt_ml.base / "checkpoints" / "best-model.pt", weights_only=True)
    assert best["epoch"] == 1
    assert _weights_equal(opt_ml.model_dir / "model.pt", best["model_state"])

    opt_ml.failure.unlink()
    capsys.readouterr()
    log.clear()
    assert run_main(opt_ml) == 0, log.text[-3000:]

    assert "is not in" not in log.text  # the best epoch's weights were found on resume
    assert [m["epoch"] for m in metric_lines(capsys.readouterr().out)] == [2]
    assert "early stopping: valid_map has not improved for 1 epochs" in log.text
    config = json.loads((opt_ml.model_dir / "config.json").read_text())
    chosen = config["training"]["model_epoch"]
    assert (chosen["epoch"], chosen["early_stopped"]) == (1, True)
    assert _weights_equal(opt_ml.model_dir / "model.pt", best["model_state"])
    last = torch.load(
        opt_ml.base / "checkpoints" / "checkpoint-e0002-s000000.pt", weights_only=True
    )
    assert not _weights_equal(opt_ml.model_dir / "model.pt", last["model_state"])
    assert (opt_ml.output_data / "report.html").is_file()


@pytest.mark.slow
def test_a_failing_report_leaves_a_trained_job_succeeded(opt_ml, log):
    write_voc(opt_ml.channel("training"), 6)
    opt_ml.hyperparameters({**TINY, "batch_size": "2", "valid_fraction": "0.3"})
    (opt_ml.output_data / "report.html").mkdir(parents=True)  # the report cannot be written

    assert run_main(opt_ml) == 0, log.text[-3000:]

    assert "the job report was not written (IsADirectoryError" in log.text
    assert (opt_ml.model_dir / "config.json").is_file()
    assert not opt_ml.failure.exists()

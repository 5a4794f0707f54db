"""What one finished job leaves, read from the session's one real `train train` run (the
``finished_job`` fixture): its log and metrics stream, its model folder, its output and its
checkpoints; the shipped detector, loaded without this repository; and the first job's report
read from its log, as `detrain first-job` reads a job's CloudWatch stream."""

import json
import subprocess
import sys

import pytest

from contract import recipes
from contract.metrics import METRIC_NAMES
from detrain.first_job_report import JobOutcome, format_report, read_log
from tests.support.finished_job import BATCH_SIZE, EPOCHS, IMAGES, metric_lines

pytestmark = pytest.mark.slow
MODEL_FILES = {"model.pt", "config.json", "class_map.json", "detector.py"}

PREDICT = """
import json, sys
sys.modules["trainer"] = None      # the loader must not need this repository's trainer
sys.modules["icevision"] = None    # nor IceVision
model_dir, image = sys.argv[1:]
sys.path.insert(0, model_dir)      # as a user loads it (docs/training-image.md)
from detector import Detector
print(json.dumps(Detector.load(model_dir).predict([image], threshold=0.0)[0][:5]))
"""


def test_the_log_announces_each_phase_and_one_metrics_line_per_epoch(finished_job):
    metrics = metric_lines(finished_job.log)

    # the hyperparameters' epochs, not the stray _launch.json's 2
    assert [m["epoch"] for m in metrics] == list(range(1, EPOCHS + 1))
    assert all(set(m) == set(METRIC_NAMES) for m in metrics)
    for phase in (
        "Reading the training environment",
        "Loading data",
        "Creating model",
        "Start training",
        "Saving the model",
    ):
        assert phase in finished_job.log
    assert "12 training images, 4 validation images" in finished_job.log
    assert "job report: " in finished_job.log
    assert not finished_job.opt_ml.failure.exists()


def test_the_model_folder_holds_weights_config_class_map_and_detector(finished_job):
    model_dir = finished_job.opt_ml.model_dir

    assert {p.name for p in model_dir.iterdir()} == MODEL_FILES
    config = json.loads((model_dir / "config.json").read_text())
    assert (config["model"], config["backbone"], config["image_size"]) == (
        "efficientdet",
        "tf_lite0",
        128,
    )
    assert config["training"]["model_epoch"]["metric"] == "valid_map"
    assert json.loads((model_dir / "class_map.json").read_text()) == ["background", "red", "green"]


def test_the_config_records_what_was_asked_and_what_ran(finished_job):
    """amp defaults to true; a CPU job runs without autocast, and config.json says both."""
    config = json.loads((finished_job.opt_ml.model_dir / "config.json").read_text())

    assert config["training"]["hyperparameters"]["amp"] is True
    assert config["training"]["ran"] == {
        "device": "cpu",
        "autocast": "off",
        "processes": 1,
        "effective_batch_size": BATCH_SIZE,
        "dataloader_workers_per_process": 0,
        "learning_rate": pytest.approx(
            recipes.recipe("efficientdet", False).learning_rate_for(BATCH_SIZE)
        ),
    }


def test_the_output_holds_metrics_their_plot_and_the_report(finished_job):
    output = finished_job.opt_ml.output_data

    assert json.loads((output / "metrics.json").read_text())[-1]["epoch"] == EPOCHS
    assert (output / "metrics.csv").read_text().startswith("epoch,train_loss,")
    assert (output / "metrics.png").read_bytes()[:4] == b"\x89PNG"
    assert (output / "report.html").is_file()


def test_the_checkpoint_folder_keeps_the_best_epoch_and_the_last_two(finished_job):
    assert sorted(p.name for p in finished_job.checkpoints.iterdir()) == [
        "best-model.pt",
        f"checkpoint-e{EPOCHS - 1:04d}-s000000.pt",
        f"checkpoint-e{EPOCHS:04d}-s000000.pt",
    ]


def test_the_run_learns_with_the_recipes_learning_rate(finished_job):
    """No learning_rate given: EfficientDet from scratch takes its recipe's, scaled to the batch."""
    history = json.loads((finished_job.opt_ml.output_data / "metrics.json").read_text())
    config = json.loads((finished_job.opt_ml.model_dir / "config.json").read_text())

    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert max(row["valid_map_50"] for row in history) > 0.0
    assert config["training"]["hyperparameters"]["learning_rate"] == pytest.approx(
        3e-3 * BATCH_SIZE / 8
    )


def test_the_shipped_detector_predicts_without_the_trainer_or_icevision(finished_job, tmp_path):
    image = finished_job.opt_ml.channel("training") / "images" / "img_0001.jpg"

    predicted = subprocess.run(
        [sys.executable, "-c", PREDICT, str(finished_job.opt_ml.model_dir), str(image)],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )

    detections = json.loads(predicted.stdout)
    assert detections and {d["label"] for d in detections} <= {"red", "green"}
    assert all(
        0 <= d["box"][0] <= d["box"][2] <= 96 and 0 <= d["box"][1] <= d["box"][3] <= 80
        for d in detections
    )


def test_the_first_jobs_report_reads_the_real_trainers_log(finished_job):
    """The start-up, preflight and epoch lines `detrain first-job` reports, as the trainer
    writes them on a CPU host (the rehearsed first job's flow is
    rehearsal/test_first_job_rehearsal.py's; a GPU host's lines, cli/test_first_job.py's)."""
    outcome = JobOutcome("detrain-first-job", "ml.g5.xlarge", True, "Completed", None, None)

    report = format_report(outcome, read_log(finished_job.log))

    rows = {line[:16].strip(): line[16:] for line in report.splitlines()}
    assert rows["GPU"] == "none (cpu)"
    assert rows["driver"] == "none"
    assert rows["forward compat"].startswith("cpu (host driver none, compat package none: ")
    steps = IMAGES * 3 // 4 // BATCH_SIZE  # valid_fraction 0.25
    assert " s a training step (preflight, one step); " in rows["step time"]
    assert f" s an epoch (median of {EPOCHS}): {steps} steps, " in rows["step time"]

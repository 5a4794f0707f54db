"""``detrain first-job --rehearse``'s flow with a stand-in trainer: the emulated launcher
function's settings, the launcher's job, the local runner, the log through emulated CloudWatch."""

import io
import json
import sys

from detrain import first_job
from detrain.first_job_report import read_log

# Logs a CPU start-up as the trainer does, writes a failure file and exits 1.
FAILING_TRAINER = """
import os, pathlib, sys
print("INFO trainer.forward_compat: CUDA forward compatibility: host driver none, compat "
      "package none: cpu (no NVIDIA driver on this host: nothing to do)")
failure = pathlib.Path(os.environ["SAGEMAKER_BASE_DIR"]) / "output" / "failure"
failure.write_text("ConfigError: the stand-in trainer fails on purpose")
sys.exit(1)
"""


def test_the_rehearsed_first_job_runs_the_launchers_job_and_reads_its_log_back(
    tmp_path, fake_train
):
    out = io.StringIO()

    outcome, log_text = first_job.rehearse(tmp_path, images=2, command=fake_train, out=out)

    assert outcome.status == "Completed" and outcome.failure_reason is None
    assert (outcome.instance_type, outcome.spot) == ("ml.g5.xlarge", True)  # cdk.json's cheapest
    assert outcome.billable_seconds is None
    assert outcome.billable_note.startswith("emulator; the local run took ")
    assert "fake trainer started" in log_text  # the runner's log, read from the emulated stream
    assert read_log(log_text).epoch_seconds == [0.5, 0.5]  # its two metrics lines
    [run] = (tmp_path / "jobs").iterdir()
    config = run / "algo-1" / "input" / "config"
    assert json.loads((config / "hyperparameters.json").read_text())["epochs"] == "3"
    assert f"==> running {outcome.job_name} with the local runner" in out.getvalue()


def test_a_failing_first_job_reports_the_failure_file(tmp_path):
    command = [sys.executable, "-c", FAILING_TRAINER]

    outcome, log_text = first_job.rehearse(
        tmp_path, images=2, command=command, hyperparameters={"epochs": "1"}, out=io.StringIO()
    )

    assert outcome.status == "Failed"
    assert outcome.failure_reason == "ConfigError: the stand-in trainer fails on purpose"
    assert read_log(log_text).forward_compat["verdict"] == "cpu"

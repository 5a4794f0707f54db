"""``detrain first-job``: the plan (cheapest allowed GPU, spot, cap), the report read from a job's
log, and the command against the moto server (GetFunctionConfiguration, upload, Invoke, the
wait, the CloudWatch stream)."""

from __future__ import annotations

import dataclasses
import json
import time
import urllib.request
from collections.abc import Iterator

import boto3
import pytest

from contract.sagemaker import TRAINING_LOG_GROUP
from detrain import emulator, first_job, instance_prices
from detrain.first_job_report import JobOutcome, format_report, read_log
from launch_training.handler import handler
from tests.support.cli_world import BUCKET, FUNCTION, LAUNCHER

# A g4dn job's CloudWatch stream, as the trainer writes it (forward compat switched on).
GPU_LOG = """\
2026-12-06 10:00:01,000 INFO trainer.forward_compat: CUDA forward compatibility: host driver \
470.256.02, compat package 560.35.03: compat (the host driver's branch is older); restarting with \
/usr/local/cuda/compat first on LD_LIBRARY_PATH
2026-12-06 10:00:01,100 INFO trainer.forward_compat: CUDA forward compatibility on: \
LD_LIBRARY_PATH=/usr/local/cuda/compat (pid 1)
2026-12-06 10:00:04,000 INFO trainer: Reading the training environment
2026-12-06 10:00:04,010 INFO trainer.accelerator: Training device: cuda:0; GPU Tesla T4; memory \
14.6 GiB; driver 470.256.02; CUDA build 12.6
2026-12-06 10:00:09,000 INFO trainer.preflight: Preflight passed: 0.212 s per training step, \
0.101 s per validation step; 3 epochs of 12 steps will take about 40 s
2026-12-06 10:00:09,001 INFO trainer: Start training: epochs 1 to 3, 12 steps each
[metrics] epoch=1 train_loss=3.1 valid_loss=2.5 valid_map=0.01 valid_map_50=0.02 lr=0.001 \
epoch_seconds=4.1
[metrics] epoch=2 train_loss=2.1 valid_loss=2.0 valid_map=0.05 valid_map_50=0.1 lr=0.002 \
epoch_seconds=3.0
[metrics] epoch=3 train_loss=1.7 valid_loss=1.8 valid_map=0.09 valid_map_50=0.2 lr=0.0001 \
epoch_seconds=3.2
2026-12-06 10:00:21,000 INFO trainer: Training complete
"""
SPOT_G4DN = JobOutcome(
    job_name="detrain-first-job-shapes-1",
    instance_type="ml.g4dn.xlarge",
    spot=True,
    status="Completed",
    failure_reason=None,
    billable_seconds=200,
)


def _rows(report: str) -> dict[str, str]:
    return {line[:16].strip(): line[16:] for line in report.splitlines()}


# ---- the report -------------------------------------------------------------------------


def test_the_report_reads_gpu_driver_decision_and_step_time_from_a_captured_log():
    rows = _rows(format_report(SPOT_G4DN, read_log(GPU_LOG)))

    assert rows["job"] == "detrain-first-job-shapes-1: Completed"
    assert rows["instance"] == "1 x ml.g4dn.xlarge (spot)"
    assert rows["GPU"] == "Tesla T4 (cuda:0, 14.6 GiB)"
    assert rows["driver"] == "470.256.02"
    assert rows["forward compat"] == (
        "compat (host driver 470.256.02, compat package 560.35.03: the host driver's branch is "
        "older)"
    )
    assert rows["step time"] == (
        "0.212 s a training step (preflight, one step); 3.20 s an epoch (median of 3): "
        "12 steps, 0.267 s a step with validation"
    )
    assert rows["billable"] == (
        f"200 s: at most $0.041 at ml.g4dn.xlarge's on-demand $0.736/h "
        f"({instance_prices.PRICES_SOURCE})"
    )
    assert "failure" not in rows and "next" not in rows


def test_a_log_without_the_lines_says_so_instead_of_guessing():
    outcome = dataclasses.replace(
        SPOT_G4DN, status="Failed", failure_reason="CapacityError: no spot capacity"
    )
    outcome = dataclasses.replace(outcome, billable_seconds=None, billable_note="no figure")

    rows = _rows(format_report(outcome, read_log("Starting the training container\n")))

    assert rows["GPU"] == rows["driver"] == rows["forward compat"] == "not in the log"
    assert rows["step time"] == "not in the log (no preflight or epoch ran)"
    assert rows["billable"] == "n/a (no figure)"
    assert rows["failure"] == "CapacityError: no spot capacity"


def test_a_too_old_decision_says_what_to_do():
    log = GPU_LOG.replace(": compat (the host driver's branch is older)", ": too old (NVIDIA ...)")

    rows = _rows(format_report(SPOT_G4DN, read_log(log)))

    assert rows["forward compat"].startswith("too old (host driver 470.256.02")
    assert "use another instance family" in rows["next"]


def test_a_failed_job_exits_1_with_its_reason(capsys):
    failed = dataclasses.replace(SPOT_G4DN, status="Failed", failure_reason="ConfigError: bad")

    assert first_job.finish(failed, GPU_LOG) == 1
    assert first_job.finish(SPOT_G4DN, GPU_LOG) == 0

    captured = capsys.readouterr()
    assert captured.err == "detrain first-job: the job Failed: ConfigError: bad\n"
    assert "failure         ConfigError: bad" in captured.out


# ---- the plan ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("allowed", "cheapest"),
    [
        (("ml.g5.2xlarge", "ml.g5.xlarge", "ml.p4d.24xlarge"), "ml.g5.xlarge"),
        (("ml.g5.xlarge", "ml.g4dn.xlarge"), "ml.g4dn.xlarge"),
        (("ml.m5.xlarge", "ml.g5.12xlarge", "ml.g5.16xlarge"), "ml.g5.16xlarge"),
        (("ml.g6.xlarge", "ml.p3.2xlarge"), "ml.p3.2xlarge"),  # a price known beats none
        (("ml.g6e.xlarge", "ml.g6.xlarge"), "ml.g6.xlarge"),  # no prices: by name
    ],
)
def test_the_cheapest_allowed_gpu_type_is_chosen(allowed, cheapest):
    assert instance_prices.cheapest_gpu_type(allowed) == cheapest


def test_an_allow_list_without_a_gpu_type_is_refused_naming_it():
    with pytest.raises(instance_prices.NoGpuTypeError) as refused:
        instance_prices.cheapest_gpu_type(["ml.m5.xlarge", "ml.c5.2xlarge", "ml.g4ad.xlarge"])

    message = str(refused.value)
    assert "allows no GPU instance type (allowed: ml.m5.xlarge, ml.c5.2xlarge, ml.g4ad.xlarge)" in (
        message
    )
    assert "ml.g4dn.xlarge or ml.g5.xlarge to detrain:instanceTypes" in message


def test_the_plan_asks_for_spot_a_30_minute_cap_and_few_short_epochs():
    request = first_job.plan(LAUNCHER, {"epochs": "1"}).request()

    assert request == {
        "dataset": "first-job-shapes",
        "instance_type": "ml.g5.xlarge",
        "instance_count": 1,
        "spot": True,
        "max_runtime_hours": 0.5,
        "hyperparameters": {"epochs": "1", "image_size": "256"},
    }
    on_demand = dataclasses.replace(LAUNCHER, spot="off")
    assert first_job.plan(on_demand, {}).spot is False


def test_an_instance_type_the_deployment_does_not_allow_is_refused():
    with pytest.raises(first_job.FirstJobError, match=r"ml.p3.2xlarge is not an allowed GPU type"):
        first_job.plan(LAUNCHER, {}, "ml.p3.2xlarge")
    assert first_job.plan(LAUNCHER, {}, "ml.g5.2xlarge").instance_type == "ml.g5.2xlarge"


def test_a_refusal_of_the_launcher_is_named():
    with pytest.raises(first_job.FirstJobError, match="refused the first job: no quota"):
        first_job.launched_job_name({"status": "refused", "reason": "no quota"})


# ---- the command against the emulator ---------------------------------------------------


@pytest.fixture
def launcher_function(aws: str) -> Iterator[callable]:
    """The launcher in moto's Lambda, without Docker: its configuration is real, an invoke
    answers the result queued here (moto runs no code)."""

    def post(path: str, body: dict) -> None:
        data = json.dumps(body).encode()
        urllib.request.urlopen(
            urllib.request.Request(f"{aws}{path}", data=data, method="POST")
        ).close()

    def create(environment: dict[str, str]) -> None:
        emulator.register_function(FUNCTION, environment, role_name="launcher")

    post("/moto-api/config", {"lambda": {"use_docker": False}})
    try:
        yield (
            create,
            lambda result: post(
                "/moto-api/static/lambda-simple/response", {"results": [json.dumps(result)]}
            ),
        )
    finally:
        post("/moto-api/config", {"lambda": {"use_docker": True}})


def test_first_job_uploads_launches_follows_and_reports(stack, launcher_env, launcher_function):
    create, answer = launcher_function
    create(LAUNCHER.to_environ())
    boto3.client("s3").put_object(Bucket=BUCKET, Key="datasets/first-job-shapes/seen", Body=b"x")
    launched = handler(first_job.plan(LAUNCHER, {}).request(), None)
    answer(launched)
    job = launched["job_name"]
    logs = boto3.client("logs")
    logs.create_log_group(logGroupName=TRAINING_LOG_GROUP)
    logs.create_log_stream(logGroupName=TRAINING_LOG_GROUP, logStreamName=f"{job}/algo-1-17000")
    now = int(time.time() * 1000)
    events = [{"timestamp": now, "message": line} for line in GPU_LOG.splitlines()]
    logs.put_log_events(
        logGroupName=TRAINING_LOG_GROUP, logStreamName=f"{job}/algo-1-17000", logEvents=events
    )

    done = stack.detrain("first-job", "--images", "2", "--poll", "1")

    assert done.returncode == 0, done.stderr
    rows = _rows(done.stdout)
    assert rows["job"] == f"{job}: Completed"
    assert rows["instance"] == "1 x ml.g5.xlarge (spot)"
    assert rows["GPU"] == "Tesla T4 (cuda:0, 14.6 GiB)"
    assert rows["forward compat"].startswith("compat (host driver 470.256.02,")
    assert rows["billable"] == "n/a (DescribeTrainingJob gave no billable time)"  # moto's gap
    uploaded = [k for k in stack.object_keys() if k.startswith("datasets/first-job-shapes/")]
    assert "datasets/first-job-shapes/annotations.json" in uploaded
    assert "datasets/first-job-shapes/_launch.json" not in uploaded  # launched by Invoke only


def test_first_job_refuses_a_deployment_without_a_gpu_type_before_uploading(
    stack, launcher_function
):
    create, _ = launcher_function
    cpu_only = dataclasses.replace(
        LAUNCHER, allowed_instance_types=("ml.m5.xlarge",), default_instance_type="ml.m5.xlarge"
    )
    create(cpu_only.to_environ())

    done = stack.detrain("first-job")

    assert done.returncode == 2
    assert "allows no GPU instance type (allowed: ml.m5.xlarge)" in done.stderr
    assert stack.object_keys() == []

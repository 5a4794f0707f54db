"""Tuning jobs through the launcher: the request (checked against SageMaker's service model),
the moto server's happy path, and SageMaker's refusals in AWS's own error shapes (Stubber)."""

from __future__ import annotations

import dataclasses
import os

import pytest
from botocore.stub import Stubber

from contract.launcher_settings import LauncherSettings
from launch_training import handler as handler_module
from launch_training.events import Refused
from launch_training.handler import handler
from launch_training.request import TRIGGER_CONSOLE, LaunchRequest, parse_overrides
from launch_training.tuning_request import create_tuning_job_request, tuning_job_name
from tests.support.launcher_world import ENVIRONMENT, REGION, sample_event
from tests.support.service_model import problems

SETTINGS = LauncherSettings.from_environ(ENVIRONMENT)
TUNING = {
    "ranges": {
        "learning_rate": {"min": 1e-4, "max": 1e-2, "scaling": "Logarithmic"},
        "image_size": {"values": [384, 512]},
    },
    "max_jobs": 6,
    "max_parallel_jobs": 2,
}
NOT_FOUND = "Amazon SageMaker can't find a tuning job with name detrain-fridge-x"
TUNING_QUOTA = (
    "ResourceLimitExceeded",
    "The account-level service limit 'Number of concurrent hyperparameter tuning jobs' is 0 "
    "HyperParameterTuningJobs, with current utilization of 0 HyperParameterTuningJobs and a "
    "request delta of 1 HyperParameterTuningJobs. Please use AWS Service Quotas to request an "
    "increase for this quota.",
)
INVALID = (
    "ValidationException",
    "The objective metric name [valid_map] is not defined in the training job definition.",
)


def build(settings=SETTINGS, **body):
    launch = LaunchRequest(
        dataset="fridge",
        overrides=parse_overrides({"tuning": TUNING, **body}, source="test"),
        trigger=TRIGGER_CONSOLE,
        identity="console#token",
        requested_at=None,
    )
    return create_tuning_job_request(launch, settings)


@pytest.mark.parametrize(
    "body",
    [
        {"spot": False},  # plain on-demand
        {"spot": True, "max_runtime_hours": 2},  # managed spot: MaxWait > MaxRuntime
        {"spot": False, "keep_alive_minutes": 10},  # a warm pool after each trial
    ],
    ids=["plain", "spot", "warm-pool"],
)
def test_the_request_passes_sagemakers_service_model(body):
    request = build(**body)

    assert problems("CreateHyperParameterTuningJob", request) == []
    definition = request["TrainingJobDefinition"]
    assert definition["EnableNetworkIsolation"] is True
    assert definition["EnableInterContainerTrafficEncryption"] is True
    assert definition["EnableManagedSpotTraining"] is body["spot"]
    assert "CheckpointConfig" not in definition  # one prefix would be shared by every trial


def test_trials_repeat_the_single_job_and_vary_only_the_tuned_hyperparameters():
    request = build(hyperparameters={"model": "faster_rcnn", "epochs": 12}, spot=True)
    definition = request["TrainingJobDefinition"]

    assert definition["StaticHyperParameters"] == {"model": "faster_rcnn", "epochs": "12"}
    assert (
        definition["StoppingCondition"]["MaxWaitTimeInSeconds"]
        > (definition["StoppingCondition"]["MaxRuntimeInSeconds"])
    )
    names = {d["Name"] for d in definition["AlgorithmSpecification"]["MetricDefinitions"]}
    objective = request["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]
    assert objective["MetricName"] in names
    assert {t["Key"] for t in request["Tags"]} == {"project", "dataset", "trigger"}


def test_tuning_job_names_fit_32_characters_and_are_the_same_for_a_retry():
    for dataset in ("fridge", "a" * 200, "red flowers ç", "-"):
        name = tuning_job_name(dataset, "console#1")
        assert (
            len(name) <= 32
            and problems("DescribeHyperParameterTuningJob", {"HyperParameterTuningJobName": name})
            == []
        )
    assert tuning_job_name("fridge", "console#1") == tuning_job_name("fridge", "console#1")
    assert tuning_job_name("fridge", "console#1") != tuning_job_name("fridge", "console#2")
    with pytest.raises(Refused, match=r"not a valid tuning job name; allowed: at most 32"):
        build(job_name="x" * 30)


def test_a_warm_pool_on_spot_or_beyond_the_cap_is_refused():
    with pytest.raises(Refused, match=r"needs on-demand instances.*'spot': false"):
        build(keep_alive_minutes=5)  # spot is the deployment's preference
    with pytest.raises(Refused, match=r"'keep_alive_minutes' = 11 .* allowed: 1 to 10"):
        build(spot=False, keep_alive_minutes=11)
    with pytest.raises(Refused, match=r"allowed: none"):
        build(
            settings=dataclasses.replace(SETTINGS, max_keep_alive_minutes=0),
            spot=False,
            keep_alive_minutes=1,
        )


def test_the_deployments_tuning_caps_are_applied():
    with pytest.raises(Refused, match=r"'max_jobs' = 6 training jobs is not allowed by this"):
        build(settings=dataclasses.replace(SETTINGS, max_tuning_jobs=4))


# ---- the handler -----------------------------------------------------------------------------


def test_the_console_sample_starts_one_tuning_job_in_the_emulator(deployed):
    deployed.put_dataset("fridge", trigger=None)
    event = sample_event("console-tuning.json")

    first = handler(event, None)
    again = handler({**event, "client_token": "same"}, None)
    retried = handler({**event, "client_token": "same"}, None)

    assert first["status"] == "launched", first
    job = deployed.sagemaker.describe_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=first["tuning_job_name"]
    )
    config = job["HyperParameterTuningJobConfig"]
    assert config["HyperParameterTuningJobObjective"] == {
        "Type": "Maximize",
        "MetricName": "valid_map",
    }
    assert job["TrainingJobDefinition"]["EnableManagedSpotTraining"] is True
    assert (again["status"], retried["status"]) == ("launched", "already_launched")
    assert retried["tuning_job_name"] == again["tuning_job_name"]


@pytest.fixture
def sagemaker(deployed):
    clients = handler_module._clients(REGION, os.environ["AWS_ENDPOINT_URL"])
    with Stubber(clients.sagemaker) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def _tuning_fails_with(stubber, error):
    stubber.add_client_error(
        "describe_hyper_parameter_tuning_job",
        service_error_code="ResourceNotFound",
        service_message=NOT_FOUND,
        http_status_code=400,
    )
    code, message = error
    stubber.add_client_error(
        "create_hyper_parameter_tuning_job",
        service_error_code=code,
        service_message=message,
        http_status_code=400,
    )


def test_a_tuning_quota_refusal_names_the_quota_and_the_fix(deployed, sagemaker):
    deployed.put_dataset("fridge", trigger=None)
    _tuning_fails_with(sagemaker, TUNING_QUOTA)

    result = handler(sample_event("console-tuning.json"), None)

    assert result["status"] == "refused"
    assert "'Number of concurrent hyperparameter tuning jobs' is too low" in result["reason"]
    assert "request-service-quota-increase" in result["reason"]
    assert "lower 'max_parallel_jobs' (--parallel)" in result["reason"]


def test_a_validation_refusal_names_sagemakers_message(deployed, sagemaker):
    deployed.put_dataset("fridge", trigger=None)
    _tuning_fails_with(sagemaker, INVALID)

    result = handler(sample_event("console-tuning.json"), None)

    assert result["status"] == "refused"
    assert "SageMaker refused the tuning job (The objective metric name" in result["reason"]


def test_resource_in_use_is_already_started(deployed, sagemaker):
    deployed.put_dataset("fridge", trigger=None)
    _tuning_fails_with(
        sagemaker,
        ("ResourceInUse", "A hyperparameter tuning job with the name, x, already exists."),
    )
    sagemaker.add_response(
        "describe_hyper_parameter_tuning_job",
        {
            "HyperParameterTuningJobName": "detrain-fridge-x",
            "HyperParameterTuningJobArn": "arn:aws:sagemaker:us-east-1:123456789012:"
            "hyper-parameter-tuning-job/detrain-fridge-x",
            "HyperParameterTuningJobConfig": {
                "Strategy": "Bayesian",
                "ResourceLimits": {"MaxParallelTrainingJobs": 2},
            },
            "HyperParameterTuningJobStatus": "InProgress",
            "CreationTime": "2026-12-06T00:00:00Z",
            "TrainingJobStatusCounters": {},
            "ObjectiveStatusCounters": {},
        },
    )

    result = handler(sample_event("console-tuning.json"), None)

    assert (result["status"], result["job_status"]) == ("already_launched", "InProgress")

"""What moto does not do, enforced by the launcher's own code: ResourceInUse, reused names."""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pytest
from botocore.exceptions import ClientError

from contract.launcher_settings import LauncherSettings
from launch_training import launcher
from launch_training.events import Refused
from launch_training.request import TRIGGER_CONSOLE, LaunchRequest, Overrides
from tests.support.launcher_world import ENVIRONMENT

SETTINGS = LauncherSettings.from_environ(ENVIRONMENT)


class RacingSageMaker:
    """The real (moto) client, except that a create finds the job made by a concurrent delivery:
    the job appears, then SageMaker's ResourceInUse is raised, as AWS does for a taken name."""

    def __init__(self):
        self.real = boto3.client("sagemaker")

    def __getattr__(self, name):
        return getattr(self.real, name)

    def create_training_job(self, **request):
        self.real.create_training_job(**request)
        error = {"Error": {"Code": "ResourceInUse", "Message": "Training job names must be unique"}}
        raise ClientError(error, "CreateTrainingJob")


def clients(sagemaker=None) -> launcher.Clients:
    return launcher.Clients(
        s3=boto3.client("s3"),
        ecr=boto3.client("ecr"),
        sagemaker=sagemaker or boto3.client("sagemaker"),
    )


def request(dataset="fridge", job_name=None) -> LaunchRequest:
    return LaunchRequest(
        dataset=dataset,
        overrides=Overrides(job_name=job_name),
        trigger=TRIGGER_CONSOLE,
        identity="console#1",
        requested_at=datetime(2025, 6, 2, tzinfo=UTC),
    )


def test_resource_in_use_on_create_means_already_launched(deployed):
    deployed.put_dataset("fridge")

    result = launcher.launch(request(), SETTINGS, clients(RacingSageMaker()))

    assert result["status"] == "already_launched"
    assert result["job_status"] == "Completed"
    assert deployed.jobs() == [result["job_name"]]


def test_a_job_name_taken_by_another_dataset_is_refused(deployed):
    deployed.put_dataset("fridge")
    deployed.put_dataset("pets")
    launcher.launch(request("fridge", job_name="exp-1"), SETTINGS, clients())

    with pytest.raises(
        Refused, match=r"'detrain-exp-1' is already used by a job on .*datasets/fridge/"
    ):
        launcher.launch(request("pets", job_name="exp-1"), SETTINGS, clients())


def test_other_describe_errors_are_not_mistaken_for_a_new_name(deployed):
    class Throttled(RacingSageMaker):
        def describe_training_job(self, **kwargs):
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "Describe"
            )

    with pytest.raises(ClientError, match="ThrottlingException"):
        launcher.launch(request(), SETTINGS, clients(Throttled()))
    assert deployed.jobs() == []

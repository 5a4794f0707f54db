"""infra/build_on_deploy/handler.py against ECR and CodeBuild on the moto server: a new tag
starts a build, an existing tag builds nothing, a failed build fails with its log link."""

from __future__ import annotations

import json

import boto3
import pytest

from infra.build_on_deploy import handler

PROJECT = "detrain-image-build"
REPOSITORY = "detrain-training"
TAG = "0123456789abcdef"
CU126 = "https://download.pytorch.org/whl/cu126"


@pytest.fixture
def world(aws):
    ecr = boto3.client("ecr")
    codebuild = boto3.client("codebuild")
    ecr.create_repository(repositoryName=REPOSITORY, imageTagMutability="IMMUTABLE")
    codebuild.create_project(
        name=PROJECT,
        source={"type": "S3", "location": "assets/context.zip"},
        artifacts={"type": "NO_ARTIFACTS"},
        environment={
            "type": "LINUX_CONTAINER",
            "image": "aws/codebuild/standard:7.0",
            "computeType": "BUILD_GENERAL1_MEDIUM",
            "privilegedMode": True,
        },
        serviceRole="arn:aws:iam::123456789012:role/build",
    )
    return ecr, codebuild


def _event(request_type: str, **extra) -> dict:
    return {
        "RequestType": request_type,
        "ResourceProperties": {
            "ProjectName": PROJECT,
            "RepositoryName": REPOSITORY,
            "ImageTag": TAG,
            "ImageUri": f"123456789012.dkr.ecr.us-east-1.amazonaws.com/{REPOSITORY}:{TAG}",
            "BuildArgs": {"TORCH_INDEX_URL": CU126},
        },
        **extra,
    }


def _push(ecr, tag: str) -> None:
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"digest": "sha256:" + "0" * 64, "size": 1, "mediaType": "x"},
        "layers": [],
    }
    ecr.put_image(repositoryName=REPOSITORY, imageManifest=json.dumps(manifest), imageTag=tag)


def test_a_new_tag_starts_a_build_and_the_deploy_waits_for_it(world):
    _, codebuild = world

    response = handler.on_event(_event("Create"))

    build_id = response["Data"]["BuildId"]
    assert codebuild.list_builds_for_project(projectName=PROJECT)["ids"] == [build_id]
    assert response["PhysicalResourceId"] == f"{REPOSITORY}:{TAG}"
    assert response["Data"]["ImageUri"].endswith(f":{TAG}")
    done = _framework_is_complete({**_event("Create"), **response})
    assert done["IsComplete"] is True
    assert done["Data"]["ImageUri"] == response["Data"]["ImageUri"]


def test_the_build_is_told_the_tag_to_push_and_the_build_args(world, monkeypatch):
    calls: list = []
    real_client = boto3.client

    def client(name: str):
        made = real_client(name)
        return _Recording(made, calls) if name == "codebuild" else made

    monkeypatch.setattr(handler.boto3, "client", client)

    handler.on_event(_event("Update", PhysicalResourceId=f"{REPOSITORY}:old"))

    (start,) = [kwargs for name, kwargs in calls if name == "start_build"]
    assert start["environmentVariablesOverride"] == [
        {"name": handler.IMAGE_TAG_VARIABLE, "value": TAG, "type": "PLAINTEXT"},
        {"name": "TORCH_INDEX_URL", "value": CU126, "type": "PLAINTEXT"},
    ]


def test_an_existing_tag_builds_nothing(world):
    ecr, codebuild = world
    _push(ecr, TAG)

    response = handler.on_event(_event("Update", PhysicalResourceId=f"{REPOSITORY}:old"))

    assert "BuildId" not in response["Data"]
    assert codebuild.list_builds_for_project(projectName=PROJECT)["ids"] == []
    assert _framework_is_complete({**_event("Update"), **response})["IsComplete"] is True


# moto reports every build SUCCEEDED; the other statuses come from botocore's Stubber,
# which checks the responses against CodeBuild's own API model.
def _stubbed_build(status: str):
    from botocore.stub import Stubber

    codebuild = boto3.client("codebuild", region_name="us-east-1")
    stubber = Stubber(codebuild)
    build = {
        "id": f"{PROJECT}:1",
        "buildStatus": status,
        "logs": {"deepLink": "https://console.aws.amazon.com/cloudwatch/home#logEvent:group=x"},
    }
    stubber.add_response("batch_get_builds", {"builds": [build]}, {"ids": [build["id"]]})
    stubber.activate()
    return codebuild, build["id"]


@pytest.mark.parametrize("status", handler.FAILED_STATUSES)
def test_a_failed_build_fails_the_deploy_with_the_log_link(status):
    codebuild, build_id = _stubbed_build(status)

    with pytest.raises(handler.BuildFailed, match=rf"ended {status}; build log: https://"):
        handler.build_finished(build_id, codebuild=codebuild)


def test_a_running_build_is_not_finished():
    codebuild, build_id = _stubbed_build("IN_PROGRESS")

    assert handler.build_finished(build_id, codebuild=codebuild) is False


def test_the_deploy_keeps_waiting_while_the_build_runs(monkeypatch):
    codebuild, build_id = _stubbed_build("IN_PROGRESS")
    monkeypatch.setattr(handler.boto3, "client", lambda name: codebuild)
    started = {**_event("Create"), "Data": {"ImageUri": "uri", "BuildId": build_id}}

    with pytest.raises(_Retry):
        _framework_is_complete(started)


class _Retry(Exception):
    """The Provider framework's ``Retry``: its waiter asks again after the query interval."""


def _framework_is_complete(event: dict) -> dict:
    """What aws-cdk-lib's Provider framework does with is_complete's answer
    (custom-resources/lib/provider-framework/runtime/framework.js, ``isComplete``): an
    incomplete answer that carries Data fails the resource; otherwise it retries, and a
    complete answer's Data is merged over on_event's."""
    result = handler.is_complete(event)
    if not result["IsComplete"]:
        if result.get("Data"):
            raise AssertionError('"Data" is not allowed if "IsComplete" is "False"')
        raise _Retry
    return {**event, **result, "Data": {**event.get("Data", {}), **result.get("Data", {})}}


def test_delete_leaves_the_images_alone(world):
    ecr, codebuild = world
    _push(ecr, TAG)

    response = handler.on_event(_event("Delete", PhysicalResourceId=f"{REPOSITORY}:{TAG}"))

    assert response == {"PhysicalResourceId": f"{REPOSITORY}:{TAG}"}
    assert _framework_is_complete({**_event("Delete"), **response})["IsComplete"] is True
    assert ecr.describe_images(repositoryName=REPOSITORY)["imageDetails"]
    assert codebuild.list_builds_for_project(projectName=PROJECT)["ids"] == []


class _Recording:
    """A boto3 client whose calls are also written down (name, kwargs)."""

    def __init__(self, client, calls: list) -> None:
        self._client, self._calls = client, calls

    def __getattr__(self, name: str):
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def call(**kwargs):
            self._calls.append((name, kwargs))
            return attribute(**kwargs)

        return call

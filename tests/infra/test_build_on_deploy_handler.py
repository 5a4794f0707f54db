"""infra/build_on_deploy/handler.py against ECR, CodeBuild and CloudWatch Logs on the moto
server: a new tag starts a build (after making sure of its log group), an existing tag builds
nothing. What moto cannot answer (a failed build, CodeBuild's account limit) comes from
botocore's Stubber in CodeBuild's own response and error shapes: a failed build fails the deploy
with its failed phase and its log's last lines, read from moto's CloudWatch Logs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from infra.build_on_deploy import handler

PROJECT = "detrain-image-build"
REPOSITORY = "detrain-training"
TAG = "0123456789abcdef"
SERVING_TAG = f"{TAG}-cpu"
CU126 = "https://download.pytorch.org/whl/cu126"
LOG_GROUP = f"/aws/codebuild/{PROJECT}"


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
            "ServingImageTag": SERVING_TAG,
            "ServingImageUri": (
                f"123456789012.dkr.ecr.us-east-1.amazonaws.com/{REPOSITORY}:{SERVING_TAG}"
            ),
            "BuildArgs": {"TORCH_INDEX_URL": CU126},
            "LogGroupName": LOG_GROUP,
            "LogRetentionDays": "90",  # CloudFormation hands properties over as strings
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
    assert response["Data"]["ServingImageUri"].endswith(f":{SERVING_TAG}")
    done = _framework_is_complete({**_event("Create"), **response})
    assert done["IsComplete"] is True
    assert done["Data"]["ImageUri"] == response["Data"]["ImageUri"]


def test_the_build_log_group_is_made_before_the_build_with_a_bounded_retention(world):
    handler.on_event(_event("Create"))

    (group,) = boto3.client("logs").describe_log_groups(logGroupNamePrefix=LOG_GROUP)["logGroups"]
    assert group["logGroupName"] == LOG_GROUP
    assert group["retentionInDays"] == 90
    assert "kmsKeyId" not in group  # readable after the platform key is gone


def test_a_log_group_left_by_a_rolled_back_deploy_is_written_to_again(world):
    """The group outlives a rolled-back first deploy; the next deploy's build uses it."""
    logs = boto3.client("logs")
    logs.create_log_group(logGroupName=LOG_GROUP)
    logs.put_log_events(
        logGroupName=LOG_GROUP,
        logStreamName=_stream(logs, "first-try"),
        logEvents=[{"timestamp": _now_ms(), "message": "the failed first build"}],
    )

    response = handler.on_event(_event("Create"))

    assert response["Data"]["BuildId"]
    (group,) = logs.describe_log_groups(logGroupNamePrefix=LOG_GROUP)["logGroups"]
    assert group["retentionInDays"] == 90
    assert logs.describe_log_streams(logGroupName=LOG_GROUP)["logStreams"]


def _now_ms() -> int:
    """CloudWatch Logs refuses events over 14 days old."""
    return int(datetime.now(UTC).timestamp() * 1000)


def _stream(logs, name: str) -> str:
    logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=name)
    return name


def _started_with(monkeypatch, event: dict) -> dict:
    """The StartBuild request on_event makes for ``event``."""
    calls: list = []
    real_client = boto3.client

    def client(name: str):
        made = real_client(name)
        return _Recording(made, calls) if name == "codebuild" else made

    monkeypatch.setattr(handler.boto3, "client", client)
    handler.on_event(event)
    (start,) = [kwargs for name, kwargs in calls if name == "start_build"]
    return start


def test_the_build_is_told_the_tags_to_push_and_the_build_args(world, monkeypatch):
    start = _started_with(monkeypatch, _event("Update", PhysicalResourceId=f"{REPOSITORY}:old"))

    assert start["environmentVariablesOverride"] == [
        {"name": handler.IMAGE_TAG_VARIABLE, "value": TAG, "type": "PLAINTEXT"},
        {"name": handler.SERVING_IMAGE_TAG_VARIABLE, "value": SERVING_TAG, "type": "PLAINTEXT"},
        {"name": "TORCH_INDEX_URL", "value": CU126, "type": "PLAINTEXT"},
    ]


def test_a_build_arg_without_a_value_is_not_sent(world, monkeypatch):
    """The default CUDA flavour has no index URL: the buildspec's unset is the default."""
    event = _event("Create")
    event["ResourceProperties"]["BuildArgs"] = {"TORCH_INDEX_URL": ""}

    start = _started_with(monkeypatch, event)

    assert start["environmentVariablesOverride"] == [
        {"name": handler.IMAGE_TAG_VARIABLE, "value": TAG, "type": "PLAINTEXT"},
        {"name": handler.SERVING_IMAGE_TAG_VARIABLE, "value": SERVING_TAG, "type": "PLAINTEXT"},
    ]


def test_existing_tags_build_nothing(world):
    ecr, codebuild = world
    _push(ecr, TAG)
    _push(ecr, SERVING_TAG)

    response = handler.on_event(_event("Update", PhysicalResourceId=f"{REPOSITORY}:old"))

    assert "BuildId" not in response["Data"]
    assert codebuild.list_builds_for_project(projectName=PROJECT)["ids"] == []
    assert _framework_is_complete({**_event("Update"), **response})["IsComplete"] is True


@pytest.mark.parametrize("held", [TAG, SERVING_TAG], ids=["training", "serving"])
def test_one_of_the_pair_missing_builds_again_and_the_deploy_waits(world, held):
    """A build whose second push failed left one tag: the deploy needs both images (the stack
    exports both URIs), so it builds again (the buildspec pushes only the missing one)."""
    ecr, codebuild = world
    _push(ecr, held)

    response = handler.on_event(_event("Update", PhysicalResourceId=f"{REPOSITORY}:old"))

    assert codebuild.list_builds_for_project(projectName=PROJECT)["ids"] == [
        response["Data"]["BuildId"]
    ]


# moto reports every build SUCCEEDED and never refuses StartBuild; those answers come from
# botocore's Stubber, which checks them against CodeBuild's own API model.
SELF_CHECK = 'docker run --rm --network none "${REPOSITORY_URI}:${IMAGE_TAG}" self-check'
STARTED = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)


def _phase(kind: str, status: str | None, code: str = "", message: str = "") -> dict:
    phase = {
        "phaseType": kind,
        "startTime": STARTED,
        "endTime": STARTED + timedelta(seconds=5),
        "durationInSeconds": 5,
    }
    if status:  # COMPLETED, the last phase, has no status
        phase.update(phaseStatus=status, contexts=[{"statusCode": code, "message": message}])
    return phase


def _failed_build(status: str = "FAILED", stream: str = "a1b2c3") -> dict:
    """BatchGetBuilds' answer for a build whose self-check failed, as CodeBuild gives it."""
    phases = [
        _phase(kind, "SUCCEEDED")
        for kind in ("SUBMITTED", "QUEUED", "PROVISIONING", "DOWNLOAD_SOURCE", "INSTALL")
    ]
    phases += [
        _phase("PRE_BUILD", "SUCCEEDED"),
        _phase(
            "BUILD",
            status if status != "FAULT" else "FAILED",
            "COMMAND_EXECUTION_ERROR",
            f"Error while executing command: {SELF_CHECK}. Reason: exit status 1",
        ),
        _phase("POST_BUILD", "SUCCEEDED"),
        _phase("UPLOAD_ARTIFACTS", "SUCCEEDED"),
        _phase("FINALIZING", "SUCCEEDED"),
        _phase("COMPLETED", None),
    ]
    return {
        "id": f"{PROJECT}:{stream}",
        "arn": f"arn:aws:codebuild:us-east-1:123456789012:build/{PROJECT}:{stream}",
        "buildNumber": 1,
        "startTime": STARTED,
        "currentPhase": "COMPLETED",
        "buildStatus": status,
        "projectName": PROJECT,
        "phases": phases,
        "logs": {
            "groupName": LOG_GROUP,
            "streamName": stream,
            "deepLink": "https://console.aws.amazon.com/cloudwatch/home?region=us-east-1"
            f"#logEvent:group={LOG_GROUP};stream={stream}",
            "cloudWatchLogs": {"status": "ENABLED", "groupName": LOG_GROUP},
        },
        "buildComplete": True,
    }


def _stubbed_codebuild(build: dict):
    from botocore.stub import Stubber

    codebuild = boto3.client("codebuild", region_name="us-east-1")
    stubber = Stubber(codebuild)
    stubber.add_response("batch_get_builds", {"builds": [build]}, {"ids": [build["id"]]})
    stubber.activate()
    return codebuild


def _build_log(lines: list[str], stream: str = "a1b2c3"):
    """The build's log in moto's CloudWatch Logs, one event per line as CodeBuild writes it."""
    logs = boto3.client("logs")
    logs.create_log_group(logGroupName=LOG_GROUP)
    now = _now_ms()
    logs.put_log_events(
        logGroupName=LOG_GROUP,
        logStreamName=_stream(logs, stream),
        logEvents=[
            {"timestamp": now + index, "message": f"{line}\n"} for index, line in enumerate(lines)
        ],
    )
    return logs


SELF_CHECK_LOG = [f"[Container] step {i}" for i in range(1, 31)] + [
    "self-check: FAILED weights: faster_rcnn_resnet50 weight file missing",
    "[Container] Command did not exit successfully docker run ... exit status 1",
]


def _failure(build: dict, logs) -> str:
    with pytest.raises(handler.BuildFailed) as failed:
        handler.build_finished(build["id"], codebuild=_stubbed_codebuild(build), logs=logs)
    return str(failed.value)


@pytest.mark.parametrize("status", handler.FAILED_STATUSES)
def test_a_failed_build_fails_the_deploy_with_its_phase_and_the_logs_last_lines(aws, status):
    logs = _build_log(SELF_CHECK_LOG)

    reason = _failure(_failed_build(status), logs)

    assert reason.startswith(f"training image build {PROJECT}:a1b2c3 ended {status}\n")
    phase_status = "FAILED" if status == "FAULT" else status
    assert (
        f"failed phase: BUILD {phase_status}: COMMAND_EXECUTION_ERROR: Error while executing "
        f"command: {SELF_CHECK}. Reason: exit status 1"
    ) in reason
    assert f"log: group {LOG_GROUP}, stream a1b2c3" in reason
    assert "#logEvent:group=" in reason
    tail = reason.split("last log lines:\n", 1)[1].splitlines()
    assert tail == SELF_CHECK_LOG[-handler.LOG_TAIL_LINES :]
    assert "[Container] step 12" not in reason


def test_a_long_log_is_cut_to_fit_cloudformations_reason(aws):
    long_lines = [f"{i:02d} " + "pip resolver output " * 40 for i in range(30)]
    logs = _build_log(long_lines)

    reason = _failure(_failed_build(), logs)

    assert len(reason.encode()) <= handler.REASON_BYTES
    assert "failed phase: BUILD FAILED" in reason
    kept = reason.split("last log lines:\n", 1)[1].splitlines()
    assert kept[0] == "..."
    assert kept[-1].startswith("29 pip resolver output") and kept[-1].endswith("...")
    assert all(len(line) <= handler.LOG_LINE_CHARACTERS for line in kept)


def test_an_unreadable_log_still_leaves_the_phase_and_the_link(aws):
    reason = _failure(_failed_build(), boto3.client("logs"))  # no such group

    assert "failed phase: BUILD FAILED: COMMAND_EXECUTION_ERROR" in reason
    assert "(could not read the log: ResourceNotFoundException)" in reason
    assert "console: https://console.aws.amazon.com/cloudwatch/" in reason


def test_codebuilds_hidden_account_limit_names_its_fix(world):
    """New accounts: StartBuild refuses although Service Quotas shows builds allowed."""
    from botocore.stub import Stubber

    ecr, _ = world
    codebuild = boto3.client("codebuild", region_name="us-east-1")
    with Stubber(codebuild) as stubber:
        stubber.add_client_error(
            "start_build",
            service_error_code="AccountLimitExceededException",
            service_message="Cannot have more than 0 builds in queue for the account",
            http_status_code=400,
        )
        with pytest.raises(handler.BuildNotStarted) as refused:
            handler.start_build_unless_present(
                project=PROJECT,
                repository=REPOSITORY,
                tag=TAG,
                serving_tag=SERVING_TAG,
                build_args={},
                log_group=(LOG_GROUP, 90),
                ecr=ecr,
                codebuild=codebuild,
                logs=boto3.client("logs"),
            )

    message = str(refused.value)
    assert "Cannot have more than 0 builds in queue for the account" in message
    assert "hidden CodeBuild limit" in message
    assert "AWS Support case" in message
    assert "validating the new account" in message
    assert "npx cdk deploy" in message


def _running_build() -> dict:
    return {"id": f"{PROJECT}:1", "buildStatus": "IN_PROGRESS", "currentPhase": "BUILD"}


def test_a_running_build_is_not_finished():
    build = _running_build()
    codebuild = _stubbed_codebuild(build)

    assert handler.build_finished(build["id"], codebuild=codebuild, logs=None) is False


def test_the_deploy_keeps_waiting_while_the_build_runs(monkeypatch):
    build = _running_build()
    codebuild = _stubbed_codebuild(build)
    monkeypatch.setattr(handler.boto3, "client", lambda name: codebuild)
    started = {**_event("Create"), "Data": {"ImageUri": "uri", "BuildId": build["id"]}}

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

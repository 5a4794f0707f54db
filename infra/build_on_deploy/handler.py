"""Build-on-deploy: a custom resource that builds the training image and its CPU serving image
when either tag is new.

Implements the on_event / is_complete contract of aws-cdk-lib's ``custom_resources.Provider``
(https://docs.aws.amazon.com/cdk/api/v2/python/aws_cdk.custom_resources/README.html).
Properties: ProjectName (CodeBuild), RepositoryName (ECR), ImageTag, ImageUri,
ServingImageTag, ServingImageUri (the CPU serving image, image_tag.py), BuildArgs (docker build
args, name -> value; ImageTag already hashes them), LogGroupName and LogRetentionDays (the
build's log group, which the stack does not own: see image_build.py).

- Create/Update: if the repository already holds both tags, nothing is built (tags are
  immutable); otherwise the log group is made sure of (created if absent, its retention set)
  and StartBuild runs with IMAGE_TAG, SERVING_IMAGE_TAG and each build arg that has a value as
  environment variable overrides (the buildspec passes them to docker build; it pushes only
  the tags the repository lacks), and is_complete polls it. The deploy goes on once both
  images are in the repository.
  CodeBuild's hidden account limit (AccountLimitExceededException) fails the deploy with its fix.
- A failed build fails the deploy with its status, the failed phase and the last lines of its
  log, shortened to fit CloudFormation's reason (the whole response must stay under 4 KB).
- Delete: nothing (the repository's lifecycle rule prunes old images; the log group expires).
A deploy with an unchanged training_image/ and build args leaves the properties unchanged, so
CloudFormation does not call this at all. Runs on the Lambda runtime's boto3 only.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

IMAGE_TAG_VARIABLE = "IMAGE_TAG"
SERVING_IMAGE_TAG_VARIABLE = "SERVING_IMAGE_TAG"
FAILED_STATUSES = ("FAILED", "FAULT", "STOPPED", "TIMED_OUT")
FAILED_PHASE_STATUSES = ("FAILED", "FAULT", "TIMED_OUT", "STOPPED", "CLIENT_ERROR")
LOG_TAIL_LINES = 20
LOG_LINE_CHARACTERS = 240
# The Provider framework adds "Logs: /aws/lambda/..." and a short stack to the reason, and
# CloudFormation refuses a response over 4,096 bytes: the message keeps well inside it.
REASON_BYTES = 2000
HIDDEN_LIMIT_FIX = (
    "New AWS accounts often have a hidden CodeBuild limit of 0 concurrent builds, even when "
    "Service Quotas shows 'Concurrently running builds' above 0. Fix: open an AWS Support "
    "case (Service limit increase, CodeBuild) asking to raise this account's concurrent "
    "build limit in this region, or wait until AWS has finished validating the new account "
    "(a verified payment method, a little use of other services); then `npx cdk deploy` again."
)

logger = logging.getLogger()
logger.setLevel(logging.INFO)


class BuildFailed(RuntimeError):
    """The image build ended without success; the message says where and shows its log's end."""


class BuildNotStarted(RuntimeError):
    """CodeBuild refused to start the image build; the message names the fix."""


def on_event(event: dict[str, Any], context: object = None) -> dict[str, Any]:
    props = event["ResourceProperties"]
    physical_id = f"{props['RepositoryName']}:{props['ImageTag']}"
    if event["RequestType"] == "Delete":
        return {"PhysicalResourceId": event.get("PhysicalResourceId", physical_id)}
    data = {
        "ImageUri": props["ImageUri"],
        "ImageTag": props["ImageTag"],
        "ServingImageUri": props["ServingImageUri"],
    }
    build_id = start_build_unless_present(
        project=props["ProjectName"],
        repository=props["RepositoryName"],
        tag=props["ImageTag"],
        serving_tag=props["ServingImageTag"],
        build_args=props.get("BuildArgs") or {},
        log_group=(props["LogGroupName"], int(props["LogRetentionDays"])),
        ecr=boto3.client("ecr"),
        codebuild=boto3.client("codebuild"),
        logs=boto3.client("logs"),
    )
    if build_id:
        data["BuildId"] = build_id
    return {"PhysicalResourceId": physical_id, "Data": data}


def is_complete(event: dict[str, Any], context: object = None) -> dict[str, Any]:
    """``{"IsComplete": bool}`` only: the framework keeps on_event's Data, and refuses any
    Data in a response that is not complete."""
    build_id = (event.get("Data") or {}).get("BuildId")
    if event["RequestType"] == "Delete" or not build_id:
        return {"IsComplete": True}
    codebuild, logs = boto3.client("codebuild"), boto3.client("logs")
    return {"IsComplete": build_finished(build_id, codebuild=codebuild, logs=logs)}


def start_build_unless_present(
    *,
    project: str,
    repository: str,
    tag: str,
    serving_tag: str,
    build_args: dict[str, str],
    log_group: tuple[str, int],
    ecr,
    codebuild,
    logs,
) -> str:
    """StartBuild for ``tag`` and ``serving_tag`` unless the repository holds both; returns the
    build id or ''.

    The tags and the build args they were computed from go in the same StartBuild call, so the
    images pushed under them are always the ones those args build. A build arg without a value
    is not sent: the buildspec treats it as unset, so the Dockerfile's default applies.
    """
    missing = [t for t in (tag, serving_tag) if not image_exists(ecr, repository, t)]
    if not missing:
        logger.info("images %s:%s and :%s exist; nothing to build", repository, tag, serving_tag)
        return ""
    ensure_log_group(*log_group, logs=logs)
    overrides = [
        {"name": IMAGE_TAG_VARIABLE, "value": tag, "type": "PLAINTEXT"},
        {"name": SERVING_IMAGE_TAG_VARIABLE, "value": serving_tag, "type": "PLAINTEXT"},
    ]
    overrides += [
        {"name": name, "value": value, "type": "PLAINTEXT"}
        for name, value in sorted(build_args.items())
        if value
    ]
    try:
        build = codebuild.start_build(projectName=project, environmentVariablesOverride=overrides)
    except codebuild.exceptions.AccountLimitExceededException as error:
        message = error.response.get("Error", {}).get("Message", "")
        raise BuildNotStarted(
            f"CodeBuild refused to start the training image build of {project} "
            f"(AccountLimitExceededException: {message}). {HIDDEN_LIMIT_FIX}"
        ) from None
    logger.info("started build %s for %s: %s", build["build"]["id"], repository, missing)
    return build["build"]["id"]


def image_exists(ecr, repository: str, tag: str) -> bool:
    try:
        ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])
    except ecr.exceptions.ImageNotFoundException:
        return False
    return True


def ensure_log_group(name: str, retention_days: int, *, logs) -> None:
    """The build's log group exists, with its retention, before the build writes to it."""
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=name)
    logs.put_retention_policy(logGroupName=name, retentionInDays=retention_days)


def build_finished(build_id: str, *, codebuild, logs) -> bool:
    """True when the build succeeded, False while it runs; raises BuildFailed otherwise."""
    builds = codebuild.batch_get_builds(ids=[build_id])["builds"]
    if not builds:
        raise BuildFailed(f"build {build_id} not found")
    build = builds[0]
    status = build["buildStatus"]
    if status == "SUCCEEDED":
        return True
    if status in FAILED_STATUSES:
        raise BuildFailed(failure_reason(build, log_tail(build.get("logs") or {}, logs=logs)))
    return False


def failed_phase(build: dict[str, Any]) -> str:
    """``PHASE STATUS: context message`` of the first phase that did not succeed, or ''."""
    for phase in build.get("phases") or []:
        if phase.get("phaseStatus") in FAILED_PHASE_STATUSES:
            contexts = "; ".join(
                ": ".join(part for part in (c.get("statusCode"), c.get("message")) if part)
                for c in phase.get("contexts") or []
                if c.get("statusCode") or c.get("message")
            )
            text = f"{phase['phaseType']} {phase['phaseStatus']}"
            return f"{text}: {contexts}" if contexts else text
    return ""


def log_tail(location: dict[str, Any], *, logs) -> list[str]:
    """The build log's last lines (CloudWatch Logs GetLogEvents), or one line saying why not."""
    group, stream = location.get("groupName"), location.get("streamName")
    if not group or not stream:
        return ["(the build wrote no CloudWatch log)"]
    try:
        events = logs.get_log_events(
            logGroupName=group, logStreamName=stream, limit=LOG_TAIL_LINES, startFromHead=False
        )["events"]
    except (ClientError, BotoCoreError) as error:
        code = error.response["Error"]["Code"] if isinstance(error, ClientError) else error
        return [f"(could not read the log: {code})"]
    lines = [line for event in events for line in event["message"].splitlines() if line.strip()]
    return [_shorten(line, LOG_LINE_CHARACTERS) for line in lines[-LOG_TAIL_LINES:]]


def failure_reason(build: dict[str, Any], tail: list[str]) -> str:
    """Status, failed phase and log location first; then as many of the log's last lines as
    fit in REASON_BYTES (the newest are kept)."""
    location = build.get("logs") or {}
    head = [f"training image build {build['id']} ended {build['buildStatus']}"]
    phase = failed_phase(build)
    if phase:
        head.append(f"failed phase: {_shorten(phase, 600)}")
    if location.get("groupName"):
        head.append(f"log: group {location['groupName']}, stream {location.get('streamName')}")
    head.append(f"console: {location.get('deepLink', '(no log link)')}")
    head.append("last log lines:")
    room = REASON_BYTES - len("\n".join(head).encode()) - len("\n...")
    kept: list[str] = []
    for line in reversed(tail):
        cost = len(line.encode()) + 1
        if cost > room:
            kept.append("...")
            break
        kept.append(line)
        room -= cost
    return "\n".join([*head, *reversed(kept)])


def _shorten(text: str, limit: int) -> str:
    text = text.rstrip()
    return text if len(text) <= limit else text[: limit - 3] + "..."

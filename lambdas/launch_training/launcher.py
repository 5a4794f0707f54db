"""The launcher's AWS side: read a trigger, check the dataset and the image, create the job once.

Every refusal is logged and returned as ``{"status": "refused", "reason": ...}``; no job is
created then. A refusal of an S3-triggered launch is also published to the notifications
topic: nobody waits for its answer, and the invocation still succeeds, so Lambda does not
retry what cannot succeed. AWS errors no retry can fix (a quota, a validation, a missing
permission: refusals.py) are refusals too; throttling and server errors are raised, for
Lambda's retries.

A job that already exists under the request's name (DescribeTrainingJob before the create,
ResourceInUse from it) is reported as ``already_launched``; so is a tuning job (a request with a
``tuning`` block: DescribeHyperParameterTuningJob, CreateHyperParameterTuningJob): S3 delivers
events at least once, Lambda retries asynchronous invocations with the same request id, and
SageMaker names are unique forever."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from contract.launcher_settings import LauncherSettings
from contract.names import DATASETS_PREFIX, TRIGGER_FILENAME
from launch_training import events, refusals
from launch_training.events import SUPPORTED_SHAPES, ConsoleRequest, ObjectCreated, Refused, Skipped
from launch_training.request import (
    CLIENT_TOKEN,
    TRIGGER_CONSOLE,
    TRIGGER_UPLOAD,
    LaunchRequest,
    client_token,
    create_training_job_request,
    parse_overrides,
)
from launch_training.tuning_request import create_tuning_job_request

log = logging.getLogger("launch_training")
MAX_TRIGGER_BYTES = 64 * 1024


@dataclass(frozen=True)
class Clients:
    s3: Any
    ecr: Any
    sagemaker: Any
    sns: Any = None


def handle(event: Any, request_id: str, settings: LauncherSettings, aws: Clients) -> dict[str, Any]:
    """One invocation: a console request -> one result; an S3 event -> one per record.

    Whatever the event, only errors a retry may fix escape (throttling, 5xx, no connection).
    """
    try:
        parsed = events.parse(event)
    except Refused as refusal:
        return _refused(refusal)
    except Exception as error:  # a payload shape nobody foresaw: refuse it, never crash on it
        log.exception("unreadable event")
        return _refused(
            Refused(f"the event could not be read ({error!r:.200}); {SUPPORTED_SHAPES}")
        )
    if isinstance(parsed, ConsoleRequest):
        return _guarded(lambda: _console_request(parsed, request_id, settings), settings, aws)
    results = []
    for record in parsed:
        if isinstance(record, ObjectCreated):
            record = _as_trigger(record, settings)
        if isinstance(record, Skipped):
            log.info("skipped: %s", record.reason)
            results.append({"status": "skipped", "reason": record.reason})
            continue
        result = _guarded(lambda r=record: _upload_request(r, aws), settings, aws)
        if result["status"] == "refused":
            notify_refusal(record, result["reason"], settings, aws)
        results.append(result)
    return {"results": results}


def notify_refusal(
    record: ObjectCreated, reason: str, settings: LauncherSettings, aws: Clients
) -> None:
    """Publish an upload's refusal to the notifications topic; a failed publish is only logged
    (the refusal is in the log already, and retrying the launch would not fix the publish)."""
    where = f"s3://{record.bucket}/{record.key}"
    try:
        aws.sns.publish(
            TopicArn=settings.notifications_topic_arn,
            Subject="detrain: a training launch was refused",
            Message=f"The upload of {where} started no training job.\n\nWhy: {reason}\n",
        )
    except Exception:
        log.exception(
            "could not publish the refusal of %s to %s", where, settings.notifications_topic_arn
        )


def _as_trigger(record: ObjectCreated, settings: LauncherSettings) -> ObjectCreated | Skipped:
    if record.bucket != settings.data_bucket:
        return Skipped(
            f"object in bucket {record.bucket!r}, not the data bucket {settings.data_bucket!r}"
        )
    if events.trigger_dataset(record.key) is None:
        return Skipped(f"{record.key!r} is not {DATASETS_PREFIX}<name>/{TRIGGER_FILENAME}")
    return record


def _guarded(build, settings: LauncherSettings, aws: Clients) -> dict[str, Any]:
    try:
        try:
            request = build()
        except (Refused, ClientError, BotoCoreError):
            raise
        except Exception as error:  # an odd value nobody foresaw: refuse it, never crash on it
            log.exception("unreadable request")
            raise Refused(f"the request could not be read ({error!r:.200})") from None
        return launch(request, settings, aws)
    except Refused as refusal:
        return _refused(refusal)
    except ClientError as error:
        refusal = refusals.refusal(error, job=None)
        if refusal is None:
            raise
        return _refused(refusal)


def _refused(refusal: Refused) -> dict[str, Any]:
    log.warning("refused: %s", refusal)
    return {"status": "refused", "reason": str(refusal)}


def _console_request(
    request: ConsoleRequest, request_id: str, settings: LauncherSettings
) -> LaunchRequest:
    """The request's identity is its client token (or, without one, the invocation's request
    id, which Lambda keeps for its retries of an asynchronous invocation) and its content."""
    body = request.body
    token = client_token(body[CLIENT_TOKEN]) if CLIENT_TOKEN in body else request_id
    content = {k: v for k, v in body.items() if k != CLIENT_TOKEN}
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, default=repr).encode()).hexdigest()
    return LaunchRequest(
        dataset=events.dataset_from_reference(body["dataset"], settings.data_bucket),
        overrides=parse_overrides(body, source="the request", extra=("dataset", CLIENT_TOKEN)),
        trigger=TRIGGER_CONSOLE,
        identity=f"console#{token}#{digest}",
        requested_at=None,
    )


def _upload_request(record: ObjectCreated, aws: Clients) -> LaunchRequest:
    return LaunchRequest(
        dataset=events.trigger_dataset(record.key) or "",
        overrides=parse_overrides(
            read_trigger(record, aws), source=f"s3://{record.bucket}/{record.key}"
        ),
        trigger=TRIGGER_UPLOAD,
        identity=record.identity,
        requested_at=record.event_time,
    )


def read_trigger(record: ObjectCreated, aws: Clients) -> dict[str, Any]:
    """The trigger object's body: empty or a JSON object of overrides."""
    where = f"s3://{record.bucket}/{record.key}"
    try:  # the current version: reading a past one would need s3:GetObjectVersion too
        response = aws.s3.get_object(Bucket=record.bucket, Key=record.key)
    except ClientError as error:
        if error.response["Error"]["Code"] in ("NoSuchKey", "NoSuchVersion", "404"):
            raise Refused(f"trigger object {where} no longer exists; upload it again") from None
        raise
    raw = response["Body"].read(MAX_TRIGGER_BYTES + 1)
    if len(raw) > MAX_TRIGGER_BYTES:
        raise Refused(
            f"trigger object {where} is over {MAX_TRIGGER_BYTES} bytes; write {{}} or overrides"
        )
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as error:
        raise Refused(
            f"trigger object {where} is not valid JSON ({error}); write {{}} or an object of "
            'overrides, e.g. {"hyperparameters": {"epochs": 10}}'
        ) from None
    if not isinstance(body, dict):
        raise Refused(f"trigger object {where} holds {type(body).__name__}; write a JSON object")
    return body


def launch(request: LaunchRequest, settings: LauncherSettings, aws: Clients) -> dict[str, Any]:
    """Create the job for a request, unless its name exists already."""
    if request.overrides.tuning is not None:
        return launch_tuning(request, settings, aws)
    job = create_training_job_request(request, settings)
    name = job["TrainingJobName"]
    try:
        existing = describe_job(aws, name)
        if existing is not None:
            return already_launched(job, existing)
        check_dataset(aws, settings, request.dataset)
        check_image(aws, settings)
        try:
            response = aws.sagemaker.create_training_job(**job)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceInUse":
                raise
            return already_launched(job, describe_job(aws, name) or {})
    except ClientError as error:
        refusal = refusals.refusal(error, job=job, allowed=settings.allowed_instance_types)
        if refusal is None:
            raise
        raise refusal from None
    log.info(
        "launched %s on %s", name, job["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"]
    )
    return _result("launched", job, response.get("TrainingJobArn"))


def launch_tuning(
    request: LaunchRequest, settings: LauncherSettings, aws: Clients
) -> dict[str, Any]:
    """Create the tuning job for a request, unless its name exists already."""
    tuning = create_tuning_job_request(request, settings)
    name = tuning["HyperParameterTuningJobName"]
    try:
        existing = describe_tuning_job(aws, name)
        if existing is None:
            check_dataset(aws, settings, request.dataset)
            check_image(aws, settings)
            try:
                response = aws.sagemaker.create_hyper_parameter_tuning_job(**tuning)
            except ClientError as error:
                if error.response["Error"]["Code"] != "ResourceInUse":
                    raise
                existing = describe_tuning_job(aws, name) or {}
    except ClientError as error:
        refusal = refusals.refusal(error, job=tuning, allowed=settings.allowed_instance_types)
        if refusal is None:
            raise
        raise refusal from None
    definition = tuning["TrainingJobDefinition"]
    if existing is not None:
        found = existing.get("TrainingJobDefinition", {}).get("InputDataConfig") or []
        uris = [c["DataSource"]["S3DataSource"]["S3Uri"] for c in found if "DataSource" in c]
        wanted = definition["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"]
        if uris and wanted not in uris:
            raise Refused(
                f"tuning job name {name!r} is already used by a tuning job on {uris[0]}; "
                "choose another 'job_name' (tuning job names are unique)"
            )
        log.info("already started: %s", name)
        arn = existing.get("HyperParameterTuningJobArn")
        result = _tuning_result("already_launched", tuning, arn)
        result["job_status"] = existing.get("HyperParameterTuningJobStatus")
        return result
    log.info("started tuning job %s", name)
    return _tuning_result("launched", tuning, response.get("HyperParameterTuningJobArn"))


def describe_tuning_job(aws: Clients, name: str) -> dict[str, Any] | None:
    """DescribeHyperParameterTuningJob; None when there is no such tuning job."""
    try:
        return aws.sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    except ClientError as error:
        if error.response["Error"]["Code"] == "ResourceNotFound":
            return None
        raise


def _tuning_result(status: str, tuning: dict[str, Any], arn: str | None) -> dict[str, Any]:
    definition = tuning["TrainingJobDefinition"]
    config = tuning["HyperParameterTuningJobConfig"]
    resources = definition["ResourceConfig"]
    ranges = [r for kind in config["ParameterRanges"].values() for r in kind]
    return {
        "status": status,
        "tuning_job_name": tuning["HyperParameterTuningJobName"],
        "tuning_job_arn": arn,
        "dataset_uri": definition["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"],
        "objective": config["HyperParameterTuningJobObjective"],
        "strategy": config["Strategy"],
        "resource_limits": config["ResourceLimits"],
        "early_stopping": config["TrainingJobEarlyStoppingType"],
        "ranges": ranges,
        "instance_type": resources["InstanceType"],
        "instance_count": resources["InstanceCount"],
        "keep_alive_seconds": resources.get("KeepAlivePeriodInSeconds", 0),
        "spot": definition["EnableManagedSpotTraining"],
        "max_runtime_seconds": definition["StoppingCondition"]["MaxRuntimeInSeconds"],
        "static_hyperparameters": definition["StaticHyperParameters"],
        "output_path": definition["OutputDataConfig"]["S3OutputPath"],
    }


def describe_job(aws: Clients, name: str) -> dict[str, Any] | None:
    try:
        return aws.sagemaker.describe_training_job(TrainingJobName=name)
    except ClientError as error:
        code = error.response["Error"]["Code"]
        message = error.response["Error"].get("Message", "").lower()
        # AWS: "Requested resource not found."; moto: "Could not find training job ..."
        if code in ("ValidationException", "ResourceNotFound") and (
            "not found" in message or "could not find" in message
        ):
            return None
        raise


def already_launched(job: dict[str, Any], existing: dict[str, Any]) -> dict[str, Any]:
    name = job["TrainingJobName"]
    wanted = job["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"]
    channels = existing.get("InputDataConfig") or []
    found = [c["DataSource"]["S3DataSource"]["S3Uri"] for c in channels if "DataSource" in c]
    if found and wanted not in found:
        raise Refused(
            f"job name {name!r} is already used by a job on {found[0]}; "
            "choose another 'job_name' (training job names are unique forever)"
        )
    log.info("already launched: %s (%s)", name, existing.get("TrainingJobStatus", "unknown"))
    result = _result("already_launched", job, existing.get("TrainingJobArn"))
    result["job_status"] = existing.get("TrainingJobStatus")
    return result


def _result(status: str, job: dict[str, Any], arn: str | None) -> dict[str, Any]:
    resources = job["ResourceConfig"]
    return {
        "status": status,
        "job_name": job["TrainingJobName"],
        "job_arn": arn,
        "dataset_uri": job["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"],
        "instance_type": resources["InstanceType"],
        "instance_count": resources["InstanceCount"],
        "keep_alive_seconds": resources.get("KeepAlivePeriodInSeconds", 0),
        "spot": job["EnableManagedSpotTraining"],
        "input_mode": job["AlgorithmSpecification"]["TrainingInputMode"],
        "max_runtime_seconds": job["StoppingCondition"]["MaxRuntimeInSeconds"],
        "hyperparameters": job["HyperParameters"],
        "output_path": job["OutputDataConfig"]["S3OutputPath"],
        "checkpoint_uri": job["CheckpointConfig"]["S3Uri"],
    }


def check_dataset(aws: Clients, settings: LauncherSettings, dataset: str) -> None:
    """The dataset prefix must hold data: an object other than the trigger and folder markers."""
    prefix = f"{DATASETS_PREFIX}{dataset}/"
    where = f"s3://{settings.data_bucket}/{prefix}"
    listing = aws.s3.list_objects_v2(Bucket=settings.data_bucket, Prefix=prefix, MaxKeys=100)
    keys = [o["Key"] for o in listing.get("Contents", [])]
    if not keys:
        raise Refused(f"dataset {dataset!r} does not exist: nothing under {where}; upload it first")
    data = [k for k in keys if not k.endswith("/") and k != prefix + TRIGGER_FILENAME]
    if not data and not listing.get("IsTruncated"):
        raise Refused(
            f"dataset {dataset!r} is empty: {where} holds only {', '.join(keys)}; "
            "upload images and annotations before the trigger"
        )


def check_image(aws: Clients, settings: LauncherSettings) -> None:
    image = settings.image
    try:
        aws.ecr.describe_images(
            registryId=image.registry_id,
            repositoryName=image.repository,
            imageIds=[image.image_id()],
        )
    except ClientError as error:
        code = error.response["Error"]["Code"]
        if code not in ("ImageNotFoundException", "RepositoryNotFoundException"):
            raise
        raise Refused(
            f"image {image.uri} is not built yet ({code}); run the image build "
            "(the stack's CodeBuild project) and launch again"
        ) from None

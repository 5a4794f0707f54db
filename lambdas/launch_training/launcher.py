"""The launcher's AWS side: read a trigger, check the dataset and the image, create the job once.

Every refusal is logged and returned as ``{"status": "refused", "reason": ...}``; no job is
created then. A job that already exists under the request's name (DescribeTrainingJob before
the create, ResourceInUse from it) is reported as ``already_launched``: S3 delivers events at
least once, and SageMaker names are unique forever.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from launch_training import events
from launch_training.events import ConsoleRequest, ObjectCreated, Refused, Skipped
from launch_training.names import DATASETS_PREFIX, TRIGGER_FILENAME
from launch_training.request import (
    TRIGGER_CONSOLE,
    TRIGGER_UPLOAD,
    LaunchRequest,
    create_training_job_request,
    parse_overrides,
)
from launch_training.settings import Settings

log = logging.getLogger("launch_training")
MAX_TRIGGER_BYTES = 64 * 1024


@dataclass(frozen=True)
class Clients:
    s3: Any
    ecr: Any
    sagemaker: Any


def handle(event: Any, request_id: str, settings: Settings, aws: Clients) -> dict[str, Any]:
    """One invocation: a console request -> one result; an S3 notification -> one per record."""
    try:
        parsed = events.parse(event)
    except Refused as refusal:
        return _refused(refusal)
    if isinstance(parsed, ConsoleRequest):
        return _guarded(lambda: _console_request(parsed, request_id, settings), settings, aws)
    results = []
    for record in parsed:
        if isinstance(record, ObjectCreated):
            record = _as_trigger(record, settings)
        if isinstance(record, Skipped):
            log.info("skipped: %s", record.reason)
            results.append({"status": "skipped", "reason": record.reason})
        else:
            results.append(_guarded(lambda r=record: _upload_request(r, aws), settings, aws))
    return {"results": results}


def _as_trigger(record: ObjectCreated, settings: Settings) -> ObjectCreated | Skipped:
    if record.bucket != settings.data_bucket:
        return Skipped(
            f"object in bucket {record.bucket!r}, not the data bucket {settings.data_bucket!r}"
        )
    if events.trigger_dataset(record.key) is None:
        return Skipped(f"{record.key!r} is not {DATASETS_PREFIX}<name>/{TRIGGER_FILENAME}")
    return record


def _guarded(build, settings: Settings, aws: Clients) -> dict[str, Any]:
    try:
        return launch(build(), settings, aws)
    except Refused as refusal:
        return _refused(refusal)


def _refused(refusal: Refused) -> dict[str, Any]:
    log.warning("refused: %s", refusal)
    return {"status": "refused", "reason": str(refusal)}


def _console_request(request: ConsoleRequest, request_id: str, settings: Settings) -> LaunchRequest:
    body = request.body
    if "dataset" not in body:
        raise Refused('the request has no \'dataset\'; e.g. {"dataset": "fridge"}')
    return LaunchRequest(
        dataset=events.dataset_from_reference(body["dataset"], settings.data_bucket),
        overrides=parse_overrides(body, source="the request", extra=("dataset",)),
        trigger=TRIGGER_CONSOLE,
        identity=f"console#{request_id}",
        requested_at=datetime.now(UTC),
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


def launch(request: LaunchRequest, settings: Settings, aws: Clients) -> dict[str, Any]:
    """Create the job for a request, unless its name exists already."""
    job = create_training_job_request(request, settings)
    name = job["TrainingJobName"]
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
    log.info(
        "launched %s on %s", name, job["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"]
    )
    return _result("launched", job, response.get("TrainingJobArn"))


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
        "spot": job["EnableManagedSpotTraining"],
        "input_mode": job["AlgorithmSpecification"]["TrainingInputMode"],
        "max_runtime_seconds": job["StoppingCondition"]["MaxRuntimeInSeconds"],
        "hyperparameters": job["HyperParameters"],
        "output_path": job["OutputDataConfig"]["S3OutputPath"],
        "checkpoint_uri": job["CheckpointConfig"]["S3Uri"],
    }


def check_dataset(aws: Clients, settings: Settings, dataset: str) -> None:
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


def check_image(aws: Clients, settings: Settings) -> None:
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

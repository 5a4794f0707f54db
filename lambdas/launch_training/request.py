"""A launch request -> the CreateTrainingJob request, checked against the deploy-time allow-list.

Pure: no AWS calls. The CreateTrainingJob shape and limits are those of
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTrainingJob.html
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from contract import TRAINING_CHANNEL
from contract.hyperparameters import HyperparameterError, from_values, to_job_strings
from contract.launcher_settings import LauncherSettings
from contract.layout import CHECKPOINT_PATH
from contract.metrics import metric_definitions
from contract.names import (
    DATASETS_PREFIX,
    JOB_NAME_PREFIX,
    PROJECT,
    TAG_DATASET,
    TAG_PROJECT,
    TAG_TRIGGER,
    JobNameError,
    checkpoints_uri,
    models_uri,
    prefixed_job_name,
)
from contract.outputs import MAX_RUNTIME_VARIABLE
from contract.sagemaker import FILE_MODE, INPUT_MODES, JOB_NAME_MAX, S3_DISTRIBUTIONS
from launch_training.events import Refused

TRIGGER_UPLOAD = "upload"
TRIGGER_CONSOLE = "console"
OVERRIDE_FIELDS = (
    "hyperparameters",
    "instance_type",
    "instance_count",
    "spot",
    "max_runtime_hours",
    "job_name",
    "input_mode",
    "s3_distribution",
    "keep_alive_minutes",
    "tuning",
)
VOLUME_SIZE_GB = 50
_DATASET_SLUG_MAX = JOB_NAME_MAX - len(JOB_NAME_PREFIX) - len("-20250101-000000-12345678")
_TAG_VALUE_EXTRA = set("_.:/=+-@ ")


@dataclass(frozen=True)
class Overrides:
    """What a console request or a trigger object's body may change; None = the default."""

    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    instance_type: str | None = None
    instance_count: int | None = None
    spot: bool | None = None
    max_runtime_hours: float | None = None
    job_name: str | None = None
    input_mode: str | None = None
    s3_distribution: str | None = None
    keep_alive_minutes: int | None = None  # a warm pool after the job (on-demand only)
    tuning: Mapping[str, Any] | None = None  # a tuning job instead (tuning_request.py)


@dataclass(frozen=True)
class LaunchRequest:
    dataset: str
    overrides: Overrides
    trigger: str  # TRIGGER_UPLOAD or TRIGGER_CONSOLE
    identity: str  # same identity (a redelivered event, a retried invocation) -> same job name
    requested_at: datetime | None  # an upload's event time; None for a console request


CLIENT_TOKEN = "client_token"  # a console request's idempotency key (detrain launch sets one)
_CLIENT_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def parse_overrides(
    body: Mapping[str, Any], *, source: str, extra: tuple[str, ...] = ()
) -> Overrides:
    """Type-check the override fields of a JSON object; `extra` names fields handled elsewhere."""
    unknown = sorted(str(k) for k in body if k not in OVERRIDE_FIELDS and k not in extra)
    if unknown:
        allowed = ", ".join((*extra, *OVERRIDE_FIELDS))
        raise Refused(f"{source} has unknown field {unknown[0]!r}; allowed: {allowed}")
    hyperparameters = body.get("hyperparameters") or {}
    if not isinstance(hyperparameters, Mapping):
        raise Refused(
            f"'hyperparameters' = {hyperparameters!r} must be a JSON object, "
            'e.g. {"epochs": 10, "model": "efficientdet"}'
        )
    return Overrides(
        hyperparameters=dict(hyperparameters),
        instance_type=_optional(body, "instance_type", _string),
        instance_count=_optional(body, "instance_count", _integer),
        spot=_optional(body, "spot", _boolean),
        max_runtime_hours=_optional(body, "max_runtime_hours", _number),
        job_name=_optional(body, "job_name", _string),
        input_mode=_optional(body, "input_mode", _input_mode),
        s3_distribution=_optional(body, "s3_distribution", _s3_distribution),
        keep_alive_minutes=_optional(body, "keep_alive_minutes", _integer),
        tuning=_optional(body, "tuning", _object),
    )


def _optional(body: Mapping[str, Any], name: str, convert):
    value = body.get(name)
    return None if value is None else convert(name, value)


def _string(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Refused(f"{name!r} = {value!r} must be a non-empty string")
    return value.strip()


def _integer(name: str, value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise Refused(f"{name!r} = {value!r} must be a whole number")


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise Refused(f"{name!r} = {value!r} must be a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise Refused(f"{name!r} = {value!r} must be a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise Refused(f"{name!r} = {value!r} must be a finite number")
    return number


def _object(name: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise Refused(f"{name!r} = {value!r:.80} must be a JSON object")
    return value


def _boolean(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise Refused(f"{name!r} = {value!r} must be true or false")


def _input_mode(name: str, value: Any) -> str:
    for mode in INPUT_MODES:
        if isinstance(value, str) and value.strip().lower() == mode.lower():
            return mode
    raise Refused(f"{name!r} = {value!r} is not allowed; allowed: {', '.join(INPUT_MODES)}")


def _s3_distribution(name: str, value: Any) -> str:
    for kind in S3_DISTRIBUTIONS:
        if isinstance(value, str) and value.strip().lower() == kind.lower():
            return kind
    raise Refused(f"{name!r} = {value!r} is not allowed; allowed: {', '.join(S3_DISTRIBUTIONS)}")


def job_name(dataset: str, requested_at: datetime | None, identity: str) -> str:
    """``detrain-<dataset>-<yyyymmdd-hhmmss>-<hash>`` for an upload (its event's time), and
    ``detrain-<dataset>-<hash>`` for a console request: readable, valid, and the same for a
    redelivered event or a retried invocation (nothing in it comes from the clock)."""
    slug = re.sub(r"[^a-zA-Z0-9]+", "-", dataset).strip("-")[:_DATASET_SLUG_MAX].strip("-")
    digest = hashlib.sha256(identity.encode()).hexdigest()
    if requested_at is None:
        return f"{JOB_NAME_PREFIX}{slug or 'dataset'}-{digest[:12]}"
    stamp = f"{requested_at.year:04d}{requested_at:%m%d-%H%M%S}"
    return f"{JOB_NAME_PREFIX}{slug or 'dataset'}-{stamp}-{digest[:8]}"


def client_token(value: Any) -> str:
    """A console request's ``client_token``: 1-64 letters, digits, '-' or '_' (a UUID fits)."""
    if not isinstance(value, str) or not _CLIENT_TOKEN.match(value):
        raise Refused(
            f"{CLIENT_TOKEN!r} = {value!r:.80} is not allowed; allowed: 1-64 letters, digits, "
            "'-' or '_' (e.g. a UUID), the same for every retry of one request"
        )
    return value


def _tag_value(value: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in _TAG_VALUE_EXTRA else "_" for c in value)
    return cleaned[:256]


def dataset_uri(bucket: str, dataset: str) -> str:
    return f"s3://{bucket}/{DATASETS_PREFIX}{dataset}/"


def allowed_instance_type(value: str | None, settings: LauncherSettings) -> str:
    """The requested instance type, or the default; Refused if the deployment does not allow it."""
    instance_type = value or settings.default_instance_type
    if instance_type not in settings.allowed_instance_types:
        raise Refused(
            f"'instance_type' = {instance_type!r} is not allowed by this deployment; "
            f"allowed: {', '.join(settings.allowed_instance_types)}"
        )
    return instance_type


def allowed_instance_count(value: int | None, settings: LauncherSettings) -> int:
    """The requested instance count, or 1; Refused above the deployment's maximum."""
    count = 1 if value is None else value
    if not 1 <= count <= settings.max_instance_count:
        raise Refused(
            f"'instance_count' = {count} is not allowed by this deployment; "
            f"allowed: 1 to {settings.max_instance_count}"
        )
    return count


def _runtime_seconds(value: float | None, settings: LauncherSettings) -> int:
    hours = settings.max_runtime_hours if value is None else value
    if not 0 < hours <= settings.max_runtime_hours:
        raise Refused(
            f"'max_runtime_hours' = {hours:g} is not allowed by this deployment; "
            f"allowed: more than 0, at most {settings.max_runtime_hours:g}"
        )
    return max(60, round(hours * 3600))


def _spot(value: bool | None, settings: LauncherSettings) -> bool:
    if settings.spot == "required" and value is False:
        raise Refused("'spot' = false is not allowed: this deployment runs every job on spot")
    if settings.spot == "off" and value is True:
        raise Refused("'spot' = true is not allowed: this deployment runs on-demand instances only")
    if value is None:
        return settings.spot != "off"
    return value


def keep_alive_seconds(minutes: int | None, spot: bool, settings: LauncherSettings) -> int:
    """ResourceConfig.KeepAlivePeriodInSeconds for a requested warm pool; 0 for none. SageMaker
    keeps no warm pool for a managed spot job, so a request for both is refused."""
    if not minutes:
        return 0
    cap = settings.max_keep_alive_minutes
    if not 0 < minutes <= cap:
        allowed = f"1 to {cap}" if cap else "none (detrain:maxKeepAliveMinutes is 0)"
        raise Refused(
            f"'keep_alive_minutes' = {minutes} is not allowed by this deployment; allowed: "
            f"{allowed}"
        )
    if spot:
        fix = (
            "this deployment runs every job on spot (detrain:spot = required)"
            if settings.spot == "required"
            else "add 'spot': false (--no-spot) to run on-demand"
        )
        raise Refused(
            f"'keep_alive_minutes' = {minutes} needs on-demand instances: SageMaker keeps no "
            f"warm pool for managed spot training; {fix}"
        )
    return minutes * 60


def _hyperparameters(values: Mapping[str, Any]) -> dict[str, str]:
    try:
        return to_job_strings(from_values(values))
    except HyperparameterError as error:
        raise Refused(str(error)) from None


def resource_config(overrides: Overrides, spot: bool, settings: LauncherSettings) -> dict:
    """ResourceConfig: the allowed type and count, and a warm pool when one is asked for."""
    config: dict[str, Any] = {
        "InstanceType": allowed_instance_type(overrides.instance_type, settings),
        "InstanceCount": allowed_instance_count(overrides.instance_count, settings),
        "VolumeSizeInGB": VOLUME_SIZE_GB,
    }
    keep_alive = keep_alive_seconds(overrides.keep_alive_minutes, spot, settings)
    if keep_alive:
        config["KeepAlivePeriodInSeconds"] = keep_alive
    return config


def create_training_job_request(
    launch: LaunchRequest, settings: LauncherSettings
) -> dict[str, Any]:
    """The keyword arguments of sagemaker.create_training_job; raises Refused."""
    overrides = launch.overrides
    try:
        name = (
            prefixed_job_name(overrides.job_name)
            if overrides.job_name
            else job_name(launch.dataset, launch.requested_at, launch.identity)
        )
    except JobNameError as error:
        raise Refused(str(error)) from None
    input_mode = overrides.input_mode or FILE_MODE
    runtime = _runtime_seconds(overrides.max_runtime_hours, settings)
    spot = _spot(overrides.spot, settings)
    stopping = {"MaxRuntimeInSeconds": runtime}
    if spot:
        stopping["MaxWaitTimeInSeconds"] = 2 * runtime
    bucket = settings.data_bucket
    return {
        "TrainingJobName": name,
        "RoleArn": settings.role_arn,
        "AlgorithmSpecification": {
            "TrainingImage": settings.image.uri,
            "TrainingInputMode": input_mode,
            "MetricDefinitions": metric_definitions(),
        },
        "HyperParameters": _hyperparameters(overrides.hyperparameters),
        "InputDataConfig": [
            {
                "ChannelName": TRAINING_CHANNEL,
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": dataset_uri(bucket, launch.dataset),
                        "S3DataDistributionType": overrides.s3_distribution or S3_DISTRIBUTIONS[0],
                    }
                },
                "InputMode": input_mode,
            }
        ],
        "OutputDataConfig": {
            "S3OutputPath": models_uri(bucket),
            "KmsKeyId": settings.output_kms_key_arn,
        },
        "ResourceConfig": resource_config(overrides, spot, settings),
        "StoppingCondition": stopping,
        "EnableManagedSpotTraining": spot,
        "CheckpointConfig": {
            "S3Uri": checkpoints_uri(bucket, name),
            "LocalPath": CHECKPOINT_PATH,
        },
        "EnableNetworkIsolation": True,  # the image needs no network; hosts still reach each other
        "EnableInterContainerTrafficEncryption": True,
        "Environment": {MAX_RUNTIME_VARIABLE: str(runtime)},
        "Tags": [
            {"Key": TAG_PROJECT, "Value": PROJECT},
            {"Key": TAG_DATASET, "Value": _tag_value(launch.dataset)},
            {"Key": TAG_TRIGGER, "Value": launch.trigger},
        ],
    }

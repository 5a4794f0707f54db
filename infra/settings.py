"""The deployment's settings, read from the CDK context (cdk.json, overridable with ``-c``).

Pure Python (no aws_cdk import): the CDK app, the local rehearsal and the tests read the
same keys through the same checks. Values given on the command line (``-c key=value``)
arrive as strings; each reader accepts both the JSON type and its string spelling. Instance
types are checked against SageMaker's own list of training instance types, read from
botocore's service model (no AWS call).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import botocore
import botocore.session

from contract.launcher_settings import (
    DEFAULT_MAX_INSTANCE_COUNT,
    DEFAULT_MAX_KEEP_ALIVE_MINUTES,
    DEFAULT_MAX_PARALLEL_TUNING_JOBS,
    DEFAULT_MAX_RUNTIME_HOURS,
    DEFAULT_MAX_TUNING_JOBS,
    DEFAULT_SPOT,
    RANGES,
    LauncherSettings,
    whole_number,
)
from contract.names import SPOT_MODES, Env

INSTANCE_TYPES = "detrain:instanceTypes"
DEFAULT_INSTANCE_TYPE = "detrain:defaultInstanceType"
MAX_INSTANCE_COUNT = "detrain:maxInstanceCount"
MAX_RUNTIME_HOURS = "detrain:maxRuntimeHours"
SPOT = "detrain:spot"
NOTIFICATION_EMAIL = "detrain:notificationEmail"
REMOVAL_POLICY = "detrain:removalPolicy"
IMAGES_KEPT = "detrain:imagesKept"
LAUNCHER_CONCURRENCY = "detrain:launcherConcurrency"
CUDA = "detrain:cuda"
ENDPOINT_INSTANCE_TYPES = "detrain:endpointInstanceTypes"
MAX_TUNING_JOBS = "detrain:maxTuningJobs"
MAX_PARALLEL_TUNING_JOBS = "detrain:maxParallelTuningJobs"
MAX_KEEP_ALIVE_MINUTES = "detrain:maxKeepAliveMinutes"

REMOVAL_POLICIES = ("retain", "destroy")
# botocore's names of SageMaker's instance type lists (shapes of its service model).
TRAINING_TYPES_SHAPE = "TrainingInstanceType"
ENDPOINT_TYPES_SHAPE = "ProductionVariantInstanceType"
# The launcher's ranges are the contract's (the function reads them back with the same table).
MAX_RUNTIME_HOURS_RANGE = RANGES[Env.MAX_RUNTIME_HOURS]
MAX_INSTANCE_COUNT_RANGE = RANGES[Env.MAX_INSTANCE_COUNT]
IMAGES_KEPT_RANGE = (1, 1000)
LAUNCHER_CONCURRENCY_RANGE = (1, 100)
# No reserved concurrency unless asked for: a reservation must leave the account's unreserved
# pool at least 100 (Lambda refuses it otherwise), and a new account's quota can be 10.
LAUNCHER_CONCURRENCY_OFF = "off"
# detrain:cuda -> the Dockerfile's TORCH_INDEX_URL build arg, where pip finds torch's CUDA build:
# empty = the Dockerfile's default, PyTorch's cu126 index (CUDA 12.6: every current SageMaker GPU
# host, R470 through the image's forward-compatibility package); PyPI = torch's own CUDA 13.0
# wheels (driver >= 580, R535+ through compat). Table and sources: docs/training-image.md.
TORCH_INDEX_URL = "TORCH_INDEX_URL"
TORCH_INDEX_URLS = {"13.0": "https://pypi.org/simple", "12.6": ""}
DEFAULT_CUDA = "12.6"
# Real-time endpoints and batch transforms (`detrain deploy --instance-type`, `detrain
# transform`): CPU first (the first is transform's default), then one GPU of two generations.
DEFAULT_ENDPOINT_INSTANCE_TYPES = ("ml.m5.xlarge", "ml.c5.xlarge", "ml.g4dn.xlarge", "ml.g5.xlarge")
DEFAULTS: dict[str, Any] = {
    MAX_INSTANCE_COUNT: DEFAULT_MAX_INSTANCE_COUNT,  # the launcher's defaults are the contract's
    MAX_RUNTIME_HOURS: DEFAULT_MAX_RUNTIME_HOURS,
    SPOT: DEFAULT_SPOT,
    NOTIFICATION_EMAIL: "",
    IMAGES_KEPT: 10,
    LAUNCHER_CONCURRENCY: LAUNCHER_CONCURRENCY_OFF,
    CUDA: DEFAULT_CUDA,
    ENDPOINT_INSTANCE_TYPES: list(DEFAULT_ENDPOINT_INSTANCE_TYPES),
    MAX_TUNING_JOBS: DEFAULT_MAX_TUNING_JOBS,
    MAX_PARALLEL_TUNING_JOBS: DEFAULT_MAX_PARALLEL_TUNING_JOBS,
    MAX_KEEP_ALIVE_MINUTES: DEFAULT_MAX_KEEP_ALIVE_MINUTES,
}

_EMAIL = re.compile(r"^[^@\s,]+@[^@\s,]+\.[^@\s,]+$")


class SettingsError(ValueError):
    """A deployment setting is missing or not allowed; the message names the key and value."""


@dataclass(frozen=True)
class Settings:
    """What an operator may choose for one deployment (see cdk.json's ``detrain:*`` keys)."""

    instance_types: tuple[str, ...]
    default_instance_type: str
    max_instance_count: int
    max_runtime_hours: int
    spot: str
    notification_email: str
    removal_policy: str
    images_kept: int
    launcher_concurrency: int | None  # reserved concurrent executions; None: none reserved
    cuda: str = DEFAULT_CUDA
    endpoint_instance_types: tuple[str, ...] = DEFAULT_ENDPOINT_INSTANCE_TYPES
    max_tuning_jobs: int = DEFAULT_MAX_TUNING_JOBS
    max_parallel_tuning_jobs: int = DEFAULT_MAX_PARALLEL_TUNING_JOBS
    max_keep_alive_minutes: int = DEFAULT_MAX_KEEP_ALIVE_MINUTES

    @property
    def retain(self) -> bool:
        return self.removal_policy == "retain"

    @property
    def image_build_args(self) -> dict[str, str]:
        """The training image's ``docker build --build-arg`` values (name -> value)."""
        return {TORCH_INDEX_URL: TORCH_INDEX_URLS[self.cuda]}


def setting_keys() -> tuple[str, ...]:
    """Every context key this app reads."""
    return (
        INSTANCE_TYPES,
        DEFAULT_INSTANCE_TYPE,
        MAX_INSTANCE_COUNT,
        MAX_RUNTIME_HOURS,
        SPOT,
        NOTIFICATION_EMAIL,
        REMOVAL_POLICY,
        IMAGES_KEPT,
        LAUNCHER_CONCURRENCY,
        CUDA,
        ENDPOINT_INSTANCE_TYPES,
        MAX_TUNING_JOBS,
        MAX_PARALLEL_TUNING_JOBS,
        MAX_KEEP_ALIVE_MINUTES,
    )


def load_context(cdk_json: Path) -> dict[str, Any]:
    """The ``context`` object of a cdk.json file (what ``cdk synth`` hands the app)."""
    try:
        document = json.loads(Path(cdk_json).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise SettingsError(f"cannot read the CDK context from {cdk_json}: {error}") from error
    context = document.get("context") if isinstance(document, dict) else None
    if not isinstance(context, dict):
        raise SettingsError(f"{cdk_json} has no 'context' object")
    return context


def from_context(context: Mapping[str, Any]) -> Settings:
    """Settings from a context map (cdk.json's context, or the app's node context)."""

    def get(key: str) -> Any:
        value = context.get(key)
        if value is None:
            if key in DEFAULTS:
                return DEFAULTS[key]
            raise SettingsError(f"missing setting {key}: set it in cdk.json or with -c {key}=...")
        return value

    instance_types = _instance_types(get(INSTANCE_TYPES), INSTANCE_TYPES, TRAINING_TYPES_SHAPE)
    default_instance_type = _training_instance_type(
        DEFAULT_INSTANCE_TYPE, _text(DEFAULT_INSTANCE_TYPE, get(DEFAULT_INSTANCE_TYPE))
    )
    if default_instance_type not in instance_types:
        raise SettingsError(
            f"{DEFAULT_INSTANCE_TYPE}={default_instance_type!r} is not one of "
            f"{INSTANCE_TYPES}: {', '.join(instance_types)}"
        )
    email = _text(NOTIFICATION_EMAIL, get(NOTIFICATION_EMAIL))
    if email and not _EMAIL.match(email):
        raise SettingsError(
            f"{NOTIFICATION_EMAIL}={email!r} is not an e-mail address; "
            "allowed: one address such as ops@example.com, or empty for no subscription"
        )
    return Settings(
        instance_types=instance_types,
        default_instance_type=default_instance_type,
        max_instance_count=_integer(
            MAX_INSTANCE_COUNT, get(MAX_INSTANCE_COUNT), MAX_INSTANCE_COUNT_RANGE
        ),
        max_runtime_hours=_integer(
            MAX_RUNTIME_HOURS, get(MAX_RUNTIME_HOURS), MAX_RUNTIME_HOURS_RANGE
        ),
        spot=_choice(SPOT, get(SPOT), SPOT_MODES),
        notification_email=email,
        removal_policy=_choice(REMOVAL_POLICY, get(REMOVAL_POLICY), REMOVAL_POLICIES),
        images_kept=_integer(IMAGES_KEPT, get(IMAGES_KEPT), IMAGES_KEPT_RANGE),
        launcher_concurrency=_launcher_concurrency(get(LAUNCHER_CONCURRENCY)),
        cuda=_cuda(get(CUDA)),
        endpoint_instance_types=_instance_types(
            get(ENDPOINT_INSTANCE_TYPES), ENDPOINT_INSTANCE_TYPES, ENDPOINT_TYPES_SHAPE
        ),
        max_tuning_jobs=_integer(
            MAX_TUNING_JOBS, get(MAX_TUNING_JOBS), RANGES[Env.MAX_TUNING_JOBS]
        ),
        max_parallel_tuning_jobs=_integer(
            MAX_PARALLEL_TUNING_JOBS,
            get(MAX_PARALLEL_TUNING_JOBS),
            RANGES[Env.MAX_PARALLEL_TUNING_JOBS],
        ),
        max_keep_alive_minutes=_integer(
            MAX_KEEP_ALIVE_MINUTES, get(MAX_KEEP_ALIVE_MINUTES), RANGES[Env.MAX_KEEP_ALIVE_MINUTES]
        ),
    )


def launcher_environment(
    settings: Settings,
    *,
    bucket_name: str,
    image_uri: str,
    training_role_arn: str,
    output_kms_key_arn: str,
    notifications_topic_arn: str,
) -> dict[str, str]:
    """The launcher function's environment, written by the class its reader parses it with."""
    return LauncherSettings(
        data_bucket=bucket_name,
        image_uri=image_uri,
        role_arn=training_role_arn,
        allowed_instance_types=settings.instance_types,
        default_instance_type=settings.default_instance_type,
        max_instance_count=settings.max_instance_count,
        max_runtime_hours=settings.max_runtime_hours,
        spot=settings.spot,
        output_kms_key_arn=output_kms_key_arn,
        notifications_topic_arn=notifications_topic_arn,
        max_tuning_jobs=settings.max_tuning_jobs,
        max_parallel_tuning_jobs=settings.max_parallel_tuning_jobs,
        max_keep_alive_minutes=settings.max_keep_alive_minutes,
    ).to_environ()


def _text(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise SettingsError(f"{key}={value!r} must be a string")
    return value.strip()


def _choice(key: str, value: Any, allowed: tuple[str, ...]) -> str:
    text = _text(key, value).lower()
    if text not in allowed:
        raise SettingsError(f"{key}={value!r} is not allowed; allowed: {', '.join(allowed)}")
    return text


def _cuda(value: Any) -> str:
    # A bare number in cdk.json (12.6) means the same as the string "12.6".
    number = isinstance(value, int | float) and not isinstance(value, bool)
    text = str(value) if number else value
    return _choice(CUDA, text, tuple(TORCH_INDEX_URLS))


def _launcher_concurrency(value: Any) -> int | None:
    if isinstance(value, str) and value.strip().lower() in (LAUNCHER_CONCURRENCY_OFF, ""):
        return None
    return _integer(
        LAUNCHER_CONCURRENCY, value, LAUNCHER_CONCURRENCY_RANGE, or_else=LAUNCHER_CONCURRENCY_OFF
    )


def _integer(key: str, value: Any, bounds: tuple[int, int], *, or_else: str = "") -> int:
    number = whole_number(value, bounds)
    if number is None:
        low, high = bounds
        alternative = f", or {or_else!r}" if or_else else ""
        raise SettingsError(
            f"{key}={value!r} is not allowed; allowed: an integer from {low} to {high}{alternative}"
        )
    return number


def _instance_types(value: Any, key: str, shape: str) -> tuple[str, ...]:
    allowed = (
        "must be a list of SageMaker instance types: a JSON list such as "
        '["ml.g5.xlarge","ml.g5.2xlarge"] or one comma-separated string such as '
        "ml.g5.xlarge,ml.g5.2xlarge"
    )
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.lstrip().startswith("[") else value.split(",")
        except json.JSONDecodeError:
            raise SettingsError(f"{key}={value!r} {allowed}") from None
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        raise SettingsError(f"{key}={value!r} {allowed}")
    types = tuple(item.strip() for item in value if item.strip())
    if not types:
        raise SettingsError(f"{key}={value!r} is empty; allowed: at least one type")
    for item in types:
        _known_instance_type(key, item, shape)
    duplicates = sorted({item for item in types if types.count(item) > 1})
    if duplicates:
        raise SettingsError(f"{key} lists {', '.join(duplicates)} more than once")
    return types


@cache
def sagemaker_instance_types(shape: str) -> frozenset[str]:
    """SageMaker's instance types of one kind, as the installed botocore's service model
    carries them: ``TrainingInstanceType`` (CreateTrainingJob) or
    ``ProductionVariantInstanceType`` (CreateEndpointConfig)."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    return frozenset(model.shape_for(shape).enum)


def sagemaker_training_instance_types() -> frozenset[str]:
    """SageMaker's training instance types (the CreateTrainingJob API's enum)."""
    return sagemaker_instance_types(TRAINING_TYPES_SHAPE)


def _training_instance_type(key: str, item: str) -> str:
    return _known_instance_type(key, item, TRAINING_TYPES_SHAPE)


def _known_instance_type(key: str, item: str, shape: str) -> str:
    known = sagemaker_instance_types(shape)
    if item in known:
        return item
    kind = "training" if shape == TRAINING_TYPES_SHAPE else "endpoint"
    close = difflib.get_close_matches(item, sorted(known), n=4)
    hint = f"close matches: {', '.join(close)}" if close else "e.g. ml.g5.xlarge, ml.g6.xlarge"
    raise SettingsError(
        f"{key} holds {item!r}, not a SageMaker {kind} instance type; {hint} "
        f"(SageMaker's list of {len(known)} types in botocore {botocore.__version__}; a type "
        "newer than that needs a newer boto3 pin)"
    )

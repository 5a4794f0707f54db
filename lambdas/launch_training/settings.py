"""The launcher's deploy-time settings: environment variables, validated once per cold start.

Set by the launcher construct (names in ``names.Env``). Required: DATA_BUCKET,
TRAINING_IMAGE_URI, TRAINING_ROLE_ARN, ALLOWED_INSTANCE_TYPES (comma-separated).
Optional: DEFAULT_INSTANCE_TYPE (first allowed type), MAX_INSTANCE_COUNT (1),
MAX_RUNTIME_HOURS (24, at most 672 = SageMaker's 28 days), SPOT (``preferred``).
Required too: OUTPUT_KMS_KEY_ARN (the platform key, for the job's output) and
NOTIFICATIONS_TOPIC_ARN (where refusals of S3-triggered launches are published).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from launch_training.names import SPOT_MODES, Env

MAX_RUNTIME_HOURS_LIMIT = 28 * 24  # SageMaker's MaxRuntimeInSeconds ceiling
# <account>.dkr.ecr.<region>.amazonaws.com[.cn]/<repository>(:<tag>|@sha256:<digest>)
_IMAGE_URI = re.compile(
    r"^(?P<registry>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repository>[a-z0-9][a-z0-9._/-]*)(?::(?P<tag>[\w][\w.-]{0,127})|@(?P<digest>sha256:[0-9a-f]{64}))$"
)
_KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)/[A-Za-z0-9/_-]+$")
_TOPIC_ARN = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$")
_INSTANCE_TYPE = re.compile(r"^ml\.[a-z0-9-]+\.[a-z0-9-]+$")


class SettingsError(ValueError):
    """An environment variable of the function is missing or malformed (a deployment bug)."""


@dataclass(frozen=True)
class ImageRef:
    """A training image in ECR, as DescribeImages needs it."""

    uri: str
    registry_id: str
    repository: str
    tag: str | None
    digest: str | None

    def image_id(self) -> dict[str, str]:
        return {"imageDigest": self.digest} if self.digest else {"imageTag": self.tag or "latest"}


@dataclass(frozen=True)
class Settings:
    data_bucket: str
    image: ImageRef
    role_arn: str
    allowed_instance_types: tuple[str, ...]
    default_instance_type: str
    max_instance_count: int
    max_runtime_hours: float
    spot: str
    output_kms_key_arn: str
    notifications_topic_arn: str


def parse_image_uri(uri: str, variable: str = Env.TRAINING_IMAGE_URI) -> ImageRef:
    match = _IMAGE_URI.match(uri)
    if not match:
        raise SettingsError(
            f"{variable} = {uri!r} is not an ECR image URI; expected "
            "<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag> (or @sha256:<digest>)"
        )
    return ImageRef(
        uri=uri,
        registry_id=match["registry"],
        repository=match["repository"],
        tag=match["tag"] or (None if match["digest"] else "latest"),
        digest=match["digest"],
    )


def _required(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise SettingsError(f"environment variable {name} is not set; the launcher needs it")
    return value


def _arn(environ: Mapping[str, str], name: str, pattern: re.Pattern, example: str) -> str:
    value = _required(environ, name)
    if not pattern.match(value):
        raise SettingsError(f"{name} = {value!r} is not an ARN of the form {example}")
    return value


def _number(environ: Mapping[str, str], name: str, default: str, kind: type, low, high):
    raw = environ.get(name, "").strip() or default
    try:
        value = kind(raw)
    except ValueError:
        raise SettingsError(f"{name} = {raw!r} is not a number; allowed: {low} to {high}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} = {raw!r} is out of range; allowed: {low} to {high}")
    return value


def from_environ(environ: Mapping[str, str]) -> Settings:
    """Validate the function's environment; raises SettingsError naming the variable."""
    allowed = tuple(
        t.strip() for t in _required(environ, Env.ALLOWED_INSTANCE_TYPES).split(",") if t.strip()
    )
    for instance_type in allowed:
        if not _INSTANCE_TYPE.match(instance_type):
            raise SettingsError(
                f"{Env.ALLOWED_INSTANCE_TYPES} holds {instance_type!r}, not a SageMaker "
                "instance type (e.g. ml.g5.xlarge)"
            )
    default_type = environ.get(Env.DEFAULT_INSTANCE_TYPE, "").strip() or allowed[0]
    if default_type not in allowed:
        raise SettingsError(
            f"{Env.DEFAULT_INSTANCE_TYPE} = {default_type!r} is not in "
            f"{Env.ALLOWED_INSTANCE_TYPES}; allowed: {', '.join(allowed)}"
        )
    role_arn = _required(environ, Env.TRAINING_ROLE_ARN)
    if not re.match(r"^arn:aws[a-z-]*:iam::\d{12}:role/", role_arn):
        raise SettingsError(
            f"{Env.TRAINING_ROLE_ARN} = {role_arn!r} is not an IAM role ARN "
            "(arn:aws:iam::<account>:role/<name>)"
        )
    spot = environ.get(Env.SPOT, "").strip() or "preferred"
    if spot not in SPOT_MODES:
        raise SettingsError(
            f"{Env.SPOT} = {spot!r} is not allowed; allowed: {', '.join(SPOT_MODES)}"
        )
    return Settings(
        data_bucket=_required(environ, Env.DATA_BUCKET),
        image=parse_image_uri(_required(environ, Env.TRAINING_IMAGE_URI)),
        role_arn=role_arn,
        allowed_instance_types=allowed,
        default_instance_type=default_type,
        max_instance_count=_number(environ, Env.MAX_INSTANCE_COUNT, "1", int, 1, 100),
        max_runtime_hours=_number(
            environ, Env.MAX_RUNTIME_HOURS, "24", float, 0.1, MAX_RUNTIME_HOURS_LIMIT
        ),
        spot=spot,
        output_kms_key_arn=_arn(
            environ, Env.OUTPUT_KMS_KEY_ARN, _KMS_KEY_ARN, "arn:aws:kms:<region>:<account>:key/<id>"
        ),
        notifications_topic_arn=_arn(
            environ,
            Env.NOTIFICATIONS_TOPIC_ARN,
            _TOPIC_ARN,
            "arn:aws:sns:<region>:<account>:<name>",
        ),
    )


_loaded: dict[tuple[str, ...], Settings] = {}
_ENV_NAMES = tuple(v for k, v in vars(Env).items() if not k.startswith("_"))


def load(environ: Mapping[str, str]) -> Settings:
    """from_environ, once per distinct environment (once per cold start on Lambda)."""
    key = tuple(environ.get(name, "") for name in _ENV_NAMES)
    if key not in _loaded:
        _loaded[key] = from_environ(environ)
    return _loaded[key]

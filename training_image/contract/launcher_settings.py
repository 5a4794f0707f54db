"""The launcher function's settings: set by the stack as environment variables, read back by
the function at cold start. One class, one range table, both directions.

The stack builds ``LauncherSettings`` from cdk.json's context (infra/settings.py) and hands
``to_environ()`` to the function (infra/launcher.py); the function calls ``from_environ()``,
which validates every variable and names the bad one (lambdas/launch_training/settings.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from contract.names import SPOT_MODES, Env
from contract.sagemaker import INSTANCE_TYPE_PATTERN, MAX_KEEP_ALIVE_MINUTES, MAX_RUNTIME_HOURS

# The operator's numeric choices: (lowest, highest). Runtime is whole hours up to SageMaker's
# 28 days; instance counts far above 100 need quotas that a training platform rarely gets.
# Tuning: SageMaker's default quotas are 500 training jobs per tuning job and 10 of them in
# parallel (raisable to 100); a warm pool waits at most 60 minutes (KeepAlivePeriodInSeconds
# <= 3600).
RANGES: dict[str, tuple[int, int]] = {
    Env.MAX_INSTANCE_COUNT: (1, 100),
    Env.MAX_RUNTIME_HOURS: (1, MAX_RUNTIME_HOURS),
    Env.MAX_TUNING_JOBS: (1, 500),
    Env.MAX_PARALLEL_TUNING_JOBS: (1, 100),
    Env.MAX_KEEP_ALIVE_MINUTES: (0, MAX_KEEP_ALIVE_MINUTES),
}
# The defaults of the operator's choices: a variable left unset here, a key left out of the
# CDK context there (infra/settings.py); cdk.json spells the same values out (a test holds it).
DEFAULT_MAX_INSTANCE_COUNT = 2
DEFAULT_MAX_RUNTIME_HOURS = 24
DEFAULT_SPOT = "preferred"
# A tuning job runs at most 8 trials, 2 at a time: 8 x the cost of one job, never more than 2
# instances (x the instance count) at once. A warm pool waits at most 10 minutes after a job
# (billed as the instance while it waits), and only for a job that asks for one.
DEFAULT_MAX_TUNING_JOBS = 8
DEFAULT_MAX_PARALLEL_TUNING_JOBS = 2
DEFAULT_MAX_KEEP_ALIVE_MINUTES = 10

# <account>.dkr.ecr.<region>.amazonaws.com[.cn]/<repository>(:<tag>|@sha256:<digest>)
_IMAGE_URI = re.compile(
    r"^(?P<registry>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repository>[a-z0-9][a-z0-9._/-]*)(?::(?P<tag>[\w][\w.-]{0,127})|@(?P<digest>sha256:[0-9a-f]{64}))$"
)
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/")
_KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)/[A-Za-z0-9/_-]+$")
_TOPIC_ARN = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable and what is allowed."""


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
class LauncherSettings:
    """What the launcher may start. At synth time some values are CDK tokens, so the
    constructor does not validate; ``from_environ`` does."""

    data_bucket: str
    image_uri: str
    role_arn: str
    allowed_instance_types: tuple[str, ...]
    default_instance_type: str
    max_instance_count: int
    max_runtime_hours: int
    spot: str
    output_kms_key_arn: str
    notifications_topic_arn: str
    max_tuning_jobs: int = DEFAULT_MAX_TUNING_JOBS
    max_parallel_tuning_jobs: int = DEFAULT_MAX_PARALLEL_TUNING_JOBS
    max_keep_alive_minutes: int = DEFAULT_MAX_KEEP_ALIVE_MINUTES

    @property
    def image(self) -> ImageRef:
        return parse_image_uri(self.image_uri)

    def to_environ(self) -> dict[str, str]:
        """The function's environment variables (names.Env -> value)."""
        return {
            Env.DATA_BUCKET: self.data_bucket,
            Env.TRAINING_IMAGE_URI: self.image_uri,
            Env.TRAINING_ROLE_ARN: self.role_arn,
            Env.ALLOWED_INSTANCE_TYPES: ",".join(self.allowed_instance_types),
            Env.DEFAULT_INSTANCE_TYPE: self.default_instance_type,
            Env.MAX_INSTANCE_COUNT: str(self.max_instance_count),
            Env.MAX_RUNTIME_HOURS: str(self.max_runtime_hours),
            Env.SPOT: self.spot,
            Env.OUTPUT_KMS_KEY_ARN: self.output_kms_key_arn,
            Env.NOTIFICATIONS_TOPIC_ARN: self.notifications_topic_arn,
            Env.MAX_TUNING_JOBS: str(self.max_tuning_jobs),
            Env.MAX_PARALLEL_TUNING_JOBS: str(self.max_parallel_tuning_jobs),
            Env.MAX_KEEP_ALIVE_MINUTES: str(self.max_keep_alive_minutes),
        }

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> LauncherSettings:
        """Validate the function's environment; raises SettingsError naming the variable."""
        allowed = tuple(
            t.strip()
            for t in _required(environ, Env.ALLOWED_INSTANCE_TYPES).split(",")
            if t.strip()
        )
        for instance_type in allowed:
            check_instance_type(Env.ALLOWED_INSTANCE_TYPES, instance_type)
        default_type = environ.get(Env.DEFAULT_INSTANCE_TYPE, "").strip() or allowed[0]
        if default_type not in allowed:
            raise SettingsError(
                f"{Env.DEFAULT_INSTANCE_TYPE} = {default_type!r} is not in "
                f"{Env.ALLOWED_INSTANCE_TYPES}; allowed: {', '.join(allowed)}"
            )
        role_arn = _required(environ, Env.TRAINING_ROLE_ARN)
        if not _ROLE_ARN.match(role_arn):
            raise SettingsError(
                f"{Env.TRAINING_ROLE_ARN} = {role_arn!r} is not an IAM role ARN "
                "(arn:aws:iam::<account>:role/<name>)"
            )
        spot = environ.get(Env.SPOT, "").strip() or DEFAULT_SPOT
        if spot not in SPOT_MODES:
            raise SettingsError(
                f"{Env.SPOT} = {spot!r} is not allowed; allowed: {', '.join(SPOT_MODES)}"
            )
        image_uri = _required(environ, Env.TRAINING_IMAGE_URI)
        parse_image_uri(image_uri)
        return cls(
            data_bucket=_required(environ, Env.DATA_BUCKET),
            image_uri=image_uri,
            role_arn=role_arn,
            allowed_instance_types=allowed,
            default_instance_type=default_type,
            max_instance_count=check_number(
                Env.MAX_INSTANCE_COUNT,
                environ.get(Env.MAX_INSTANCE_COUNT, "").strip() or DEFAULT_MAX_INSTANCE_COUNT,
            ),
            max_runtime_hours=check_number(
                Env.MAX_RUNTIME_HOURS,
                environ.get(Env.MAX_RUNTIME_HOURS, "").strip() or DEFAULT_MAX_RUNTIME_HOURS,
            ),
            spot=spot,
            output_kms_key_arn=_arn(
                environ,
                Env.OUTPUT_KMS_KEY_ARN,
                _KMS_KEY_ARN,
                "arn:aws:kms:<region>:<account>:key/<id>",
            ),
            notifications_topic_arn=_arn(
                environ,
                Env.NOTIFICATIONS_TOPIC_ARN,
                _TOPIC_ARN,
                "arn:aws:sns:<region>:<account>:<name>",
            ),
            max_tuning_jobs=_number_or_default(environ, Env.MAX_TUNING_JOBS),
            max_parallel_tuning_jobs=_number_or_default(environ, Env.MAX_PARALLEL_TUNING_JOBS),
            max_keep_alive_minutes=_number_or_default(environ, Env.MAX_KEEP_ALIVE_MINUTES),
        )


def whole_number(value: object, bounds: tuple[int, int]) -> int | None:
    """An int, or its decimal spelling, within ``bounds`` (both ends allowed); else None."""
    low, high = bounds
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"\s*\d+\s*", value):
        number = int(value)
    return number if number is not None and low <= number <= high else None


def check_number(name: str, value: object) -> int:
    """A whole number within ``RANGES[name]``; SettingsError naming the variable otherwise."""
    number = whole_number(value, RANGES[name])
    if number is None:
        low, high = RANGES[name]
        raise SettingsError(
            f"{name} = {value!r} is not allowed; allowed: an integer from {low} to {high}"
        )
    return number


def check_instance_type(name: str, value: str) -> str:
    """The shape of a SageMaker training instance type (ml.<family>.<size>)."""
    if not INSTANCE_TYPE_PATTERN.fullmatch(value):
        raise SettingsError(
            f"{name} holds {value!r}, not a SageMaker instance type (e.g. ml.g5.xlarge)"
        )
    return value


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


_DEFAULTS = {
    Env.MAX_TUNING_JOBS: DEFAULT_MAX_TUNING_JOBS,
    Env.MAX_PARALLEL_TUNING_JOBS: DEFAULT_MAX_PARALLEL_TUNING_JOBS,
    Env.MAX_KEEP_ALIVE_MINUTES: DEFAULT_MAX_KEEP_ALIVE_MINUTES,
}


def _number_or_default(environ: Mapping[str, str], name: str) -> int:
    return check_number(name, environ.get(name, "").strip() or _DEFAULTS[name])


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

"""The function's environment (contract.launcher_settings): validated once per cold start,
errors name the variable and what is allowed."""

from __future__ import annotations

import pytest

from contract.launcher_settings import (
    DEFAULT_MAX_INSTANCE_COUNT,
    DEFAULT_MAX_RUNTIME_HOURS,
    DEFAULT_SPOT,
    LauncherSettings,
    SettingsError,
    parse_image_uri,
)
from contract.names import Env
from launch_training import settings
from tests.support.launcher_world import ENVIRONMENT, IMAGE_URI


def environ(**changes: str | None) -> dict[str, str]:
    values = {**ENVIRONMENT, **changes}
    return {k: v for k, v in values.items() if v is not None}


def test_a_complete_environment():
    config = LauncherSettings.from_environ(ENVIRONMENT)

    assert config.allowed_instance_types == ("ml.g5.xlarge", "ml.g5.2xlarge")
    assert config.image.repository == "detrain-training"
    assert config.image.image_id() == {"imageTag": "v1"}
    assert config.max_instance_count == 2 and config.max_runtime_hours == 12
    assert config.spot == "preferred"


def test_optional_variables_have_defaults():
    config = LauncherSettings.from_environ(
        environ(
            DEFAULT_INSTANCE_TYPE=None, MAX_INSTANCE_COUNT=None, MAX_RUNTIME_HOURS=None, SPOT=None
        )
    )

    assert config.default_instance_type == "ml.g5.xlarge"
    assert (config.max_instance_count, config.max_runtime_hours, config.spot) == (
        DEFAULT_MAX_INSTANCE_COUNT,
        DEFAULT_MAX_RUNTIME_HOURS,
        DEFAULT_SPOT,
    )


@pytest.mark.parametrize(
    "name",
    [Env.DATA_BUCKET, Env.TRAINING_IMAGE_URI, Env.TRAINING_ROLE_ARN, Env.ALLOWED_INSTANCE_TYPES],
)
def test_a_missing_required_variable_is_named(name):
    with pytest.raises(SettingsError, match=f"{name} is not set"):
        LauncherSettings.from_environ(environ(**{name: None}))


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (Env.TRAINING_IMAGE_URI, "detrain-training:latest", "not an ECR image URI"),
        (Env.TRAINING_ROLE_ARN, "detrain-training", "not an IAM role ARN"),
        (Env.ALLOWED_INSTANCE_TYPES, "g5.xlarge", "'g5.xlarge', not a SageMaker instance type"),
        (Env.DEFAULT_INSTANCE_TYPE, "ml.p5.48xlarge", "allowed: ml.g5.xlarge, ml.g5.2xlarge"),
        (
            Env.MAX_INSTANCE_COUNT,
            "two",
            "MAX_INSTANCE_COUNT = 'two' is not allowed; allowed: an integer from 1 to 100",
        ),
        (Env.MAX_INSTANCE_COUNT, "0", "allowed: an integer from 1 to 100"),
        (Env.MAX_RUNTIME_HOURS, "700", "allowed: an integer from 1 to 672"),
        (Env.MAX_RUNTIME_HOURS, "0.5", "allowed: an integer from 1 to 672"),
        (Env.SPOT, "always", "allowed: required, preferred, off"),
    ],
)
def test_a_malformed_variable_is_named_with_what_is_allowed(name, value, message):
    with pytest.raises(SettingsError, match=message):
        LauncherSettings.from_environ(environ(**{name: value}))


def test_image_by_digest():
    digest = "sha256:" + "a" * 64
    image = parse_image_uri(IMAGE_URI.replace(":v1", f"@{digest}"))

    assert image.image_id() == {"imageDigest": digest}


def test_load_validates_once_per_environment():
    first = settings.load(ENVIRONMENT)

    assert settings.load(dict(ENVIRONMENT)) is first
    assert settings.load(environ(SPOT="off")).spot == "off"

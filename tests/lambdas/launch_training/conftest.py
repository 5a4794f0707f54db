"""Fixtures: the launcher's environment and resources, in the moto server of tests/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest

from tests.support.launcher_world import BUCKET, Deployed, register_image


@pytest.fixture
def deployed(aws: str, launcher_env: dict[str, str]) -> Iterator[Deployed]:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    register_image()
    yield Deployed(bucket=BUCKET, s3=s3, sagemaker=boto3.client("sagemaker"))

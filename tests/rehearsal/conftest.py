"""Helpers for the rehearsal and runner tests: a job created in the emulator, a fake trainer."""

from __future__ import annotations

import sys
from pathlib import Path

import boto3
import pytest

FAKE_TRAIN = Path(__file__).resolve().parents[1] / "support" / "fake_train.py"
BUCKET = "detrain-data-123456789012-us-east-1"


@pytest.fixture
def fake_train() -> list[str]:
    return [sys.executable, str(FAKE_TRAIN), "train"]


@pytest.fixture
def bucket(aws: str) -> str:
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    return BUCKET


def _put_files(bucket: str, prefix: str, files: dict[str, str]) -> None:
    s3 = boto3.client("s3")
    for name, body in files.items():
        s3.put_object(Bucket=bucket, Key=f"{prefix}{name}", Body=body.encode())


@pytest.fixture
def put_files(aws: str):
    """put_files(bucket, prefix, {name: text}) into the emulated S3."""
    return _put_files


@pytest.fixture
def create_job(aws: str):
    """create_job(bucket, name=..., **request_changes) -> DescribeTrainingJob's answer."""
    return _create_job


def _create_job(bucket: str, name: str = "detrain-shapes-20250101-000000-abcd1234", **changes):
    """CreateTrainingJob as the launcher sends it, then DescribeTrainingJob's answer."""
    request = {
        "TrainingJobName": name,
        "RoleArn": "arn:aws:iam::123456789012:role/training",
        "AlgorithmSpecification": {
            "TrainingImage": "123456789012.dkr.ecr.us-east-1.amazonaws.com/detrain-training:abc",
            "TrainingInputMode": "File",
        },
        "HyperParameters": {"epochs": "2", "model": "efficientdet"},
        "InputDataConfig": [
            {
                "ChannelName": "training",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": f"s3://{bucket}/datasets/shapes/",
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
                "InputMode": "File",
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/models/"},
        "ResourceConfig": {
            "InstanceType": "ml.g5.xlarge",
            "InstanceCount": 1,
            "VolumeSizeInGB": 50,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "CheckpointConfig": {
            "S3Uri": f"s3://{bucket}/checkpoints/{name}/",
            "LocalPath": "/opt/ml/checkpoints",
        },
    }
    request.update(changes)
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_training_job(**request)
    description = sagemaker.describe_training_job(TrainingJobName=name)
    description.setdefault("Environment", {"DETRAIN_TEST": "yes"})  # moto does not echo it
    return description

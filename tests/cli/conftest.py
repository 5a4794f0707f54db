"""A deployed-looking stack in the moto server: CloudFormation outputs, the bucket, the image.

The data bucket also notifies an SQS queue of every object created, so a test can read the
events S3 (moto) sends, in order, and hand the trigger's to the launcher.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from contract.names import STACK_NAME
from detrain import emulator
from detrain.local_endpoint import LocalServer, local_server
from tests.support.cli_world import BUCKET, TEMPLATE, CliWorld, register_image


@pytest.fixture
def stack(aws: str) -> Iterator[CliWorld]:
    boto3.client("cloudformation").create_stack(
        StackName=STACK_NAME, TemplateBody=json.dumps(TEMPLATE)
    )
    register_image()
    queue_url = emulator.capture_s3_events(BUCKET, "created-events")
    boto3.client("sqs").purge_queue(QueueUrl=queue_url)  # the s3:TestEvent
    env = {**os.environ, "COLUMNS": "100"}
    yield CliWorld(bucket=BUCKET, env=env, queue_url=queue_url)


@pytest.fixture
def dataset_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "fridge"
    (folder / "images").mkdir(parents=True)
    (folder / "annotations").mkdir()
    for i in range(3):
        (folder / "images" / f"{i}.jpg").write_bytes(bytes([i]) * (1000 + i))
        (folder / "annotations" / f"{i}.xml").write_text(f"<annotation>{i}</annotation>")
    (folder / ".DS_Store").write_bytes(b"junk")
    hour_ago = time.time() - 3600  # S3's LastModified has whole seconds: files older than a second
    for path in folder.rglob("*"):
        os.utime(path, (hour_ago, hour_ago))
    return folder


@pytest.fixture(scope="session")
def served_model(
    trained_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalServer]:
    """The session's tiny model served by `train serve` on loopback, as `detrain serve` runs
    it (detrain/local_endpoint.py), for the commands that invoke an endpoint."""
    with local_server(trained_model, tmp_path_factory.mktemp("served")) as server:
        yield server

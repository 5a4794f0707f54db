"""The CLI tests' world: a deployed-looking stack in the moto server, and a way to run the CLI."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import boto3

from contract.launcher_settings import LauncherSettings
from contract.names import REPOSITORY_NAME, Output
from detrain import emulator
from launch_training.handler import handler

ACCOUNT, REGION = emulator.EMULATED_ACCOUNT, "us-east-1"
# The launcher's one test environment (the `launcher_env` fixture of tests/conftest.py).
LAUNCHER = emulator.launcher_settings(ACCOUNT, REGION)
BUCKET = LAUNCHER.data_bucket
IMAGE_URI = LAUNCHER.image_uri
FUNCTION = "detrain-launcher"
TEMPLATE = {
    "Resources": {"DataBucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": BUCKET}}},
    "Outputs": {
        Output.BUCKET_NAME: {"Value": {"Ref": "DataBucket"}},
        Output.FUNCTION_NAME: {"Value": FUNCTION},
        Output.IMAGE_URI: {"Value": IMAGE_URI},
    },
}


@dataclass
class CliWorld:
    """A deployed-looking stack in the moto server, and the CLI run against it."""

    bucket: str
    env: dict[str, str]
    queue_url: str

    def detrain(
        self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> subprocess.CompletedProcess:
        """Run the CLI as a user would: a child process that talks to the moto server."""
        return subprocess.run(
            [sys.executable, "-m", "detrain", *args],
            env=env or self.env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def created_events(self) -> list[dict]:
        sqs, found = boto3.client("sqs"), []
        while True:
            messages = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not messages:
                return found
            for message in messages:
                body = json.loads(message["Body"])
                found.extend({"Records": [r]} for r in body.get("Records", []))
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def object_keys(self) -> list[str]:
        listing = boto3.client("s3").list_objects_v2(Bucket=self.bucket)
        return sorted(o["Key"] for o in listing.get("Contents", []))


def register_image() -> None:
    emulator.register_image(REPOSITORY_NAME, "v1")


def deploy_launcher(settings: LauncherSettings = LAUNCHER) -> None:
    """The launcher function as the stack deploys it: its code aside (moto runs none here),
    its environment, which is where the CLI reads the deployment's allow-list."""
    emulator.register_function(FUNCTION, settings.to_environ(), role_name="launcher")


def launched_job(stack: CliWorld, dataset_folder: Path, launcher_env) -> str:
    """Upload ``dataset_folder`` as "fridge" with the CLI, hand its trigger to the launcher,
    and return the name of the job it launched."""
    assert stack.detrain("upload", "fridge", str(dataset_folder), "--no-progress").returncode == 0
    trigger = stack.created_events()[-1]
    [result] = handler(trigger, None)["results"]
    assert result["status"] == "launched", result
    return result["job_name"]


def model_archive(members: dict[str, bytes]) -> bytes:
    """A model.tar.gz holding ``members`` (name -> bytes)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()

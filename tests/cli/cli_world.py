"""The CLI tests' world: a deployed-looking stack in the moto server, and a way to run the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass

import boto3

from detrain import emulator
from launch_training.names import Env, Output, data_bucket_name

ACCOUNT, REGION = "123456789012", "us-east-1"
BUCKET = data_bucket_name(ACCOUNT, REGION)
FUNCTION = "detrain-launcher"
IMAGE_URI = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/detrain-training:v1"
# The platform key and the notifications topic as the stack names them (a test that needs them
# to exist in moto creates them under these names).
OUTPUT_KMS_KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0a1b2c3d-4e5f-6789-abcd-ef0123456789"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:detrain-notifications"
LAUNCHER_ENVIRONMENT = {
    Env.DATA_BUCKET: BUCKET,
    Env.TRAINING_IMAGE_URI: IMAGE_URI,
    Env.TRAINING_ROLE_ARN: f"arn:aws:iam::{ACCOUNT}:role/detrain-training",
    Env.ALLOWED_INSTANCE_TYPES: "ml.g5.xlarge,ml.g5.2xlarge",
    Env.MAX_INSTANCE_COUNT: "1",
    Env.MAX_RUNTIME_HOURS: "12",
    Env.SPOT: "preferred",
    Env.OUTPUT_KMS_KEY_ARN: OUTPUT_KMS_KEY_ARN,
    Env.NOTIFICATIONS_TOPIC_ARN: TOPIC_ARN,
}
TEMPLATE = {
    "Resources": {"DataBucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": BUCKET}}},
    "Outputs": {
        Output.BUCKET_NAME: {"Value": {"Ref": "DataBucket"}},
        Output.FUNCTION_NAME: {"Value": FUNCTION},
        Output.IMAGE_URI: {"Value": IMAGE_URI},
    },
}


@dataclass
class Stack:
    bucket: str
    env: dict[str, str]
    queue_url: str

    def detrain(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """Run the CLI as a user would: a child process that talks to the moto server."""
        return subprocess.run(
            [sys.executable, "-m", "detrain", *args],
            env=env or self.env,
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
    emulator.register_image("detrain-training", "v1")

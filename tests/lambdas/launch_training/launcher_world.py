"""The launcher's world for tests: its environment, the payloads, a bucket and an image in moto."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from detrain import emulator
from launch_training import settings
from launch_training.names import Env, data_bucket_name

PAYLOADS = Path(__file__).parent / "payloads"
SAMPLE_EVENTS = Path(__file__).resolve().parents[3] / "events"
ACCOUNT, REGION = "123456789012", "us-east-1"
BUCKET = data_bucket_name(ACCOUNT, REGION)
REPOSITORY = "detrain-training"
IMAGE_URI = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{REPOSITORY}:v1"
# The platform key and the notifications topic as the stack names them (a test that needs them
# to exist in moto creates them under these names).
OUTPUT_KMS_KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0a1b2c3d-4e5f-6789-abcd-ef0123456789"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:detrain-notifications"
ENVIRONMENT = {
    Env.DATA_BUCKET: BUCKET,
    Env.TRAINING_IMAGE_URI: IMAGE_URI,
    Env.TRAINING_ROLE_ARN: f"arn:aws:iam::{ACCOUNT}:role/detrain-training",
    Env.ALLOWED_INSTANCE_TYPES: "ml.g5.xlarge,ml.g5.2xlarge",
    Env.DEFAULT_INSTANCE_TYPE: "ml.g5.xlarge",
    Env.MAX_INSTANCE_COUNT: "2",
    Env.MAX_RUNTIME_HOURS: "12",
    Env.SPOT: "preferred",
    Env.OUTPUT_KMS_KEY_ARN: OUTPUT_KMS_KEY_ARN,
    Env.NOTIFICATIONS_TOPIC_ARN: TOPIC_ARN,
}


def payload(name: str) -> dict:
    return json.loads((PAYLOADS / name).read_text())


def sample_event(name: str) -> dict:
    return json.loads((SAMPLE_EVENTS / name).read_text())


def register_image(uri: str = IMAGE_URI) -> None:
    image = settings.parse_image_uri(uri)
    emulator.register_image(image.repository, image.tag)


@dataclass
class Deployed:
    """The launcher's world: its environment set, the bucket made, the image registered."""

    bucket: str
    s3: object
    sagemaker: object

    def put_dataset(self, name: str, files: int = 2, trigger: bytes | None = b"{}") -> None:
        for i in range(files):
            self.s3.put_object(
                Bucket=self.bucket, Key=f"datasets/{name}/images/{i}.jpg", Body=b"jpg"
            )
        if trigger is not None:
            self.s3.put_object(
                Bucket=self.bucket, Key=f"datasets/{name}/_launch.json", Body=trigger
            )

    def jobs(self) -> list[str]:
        summaries = self.sagemaker.list_training_jobs(MaxResults=100)["TrainingJobSummaries"]
        return sorted(job["TrainingJobName"] for job in summaries)

    def job(self, name: str) -> dict:
        return self.sagemaker.describe_training_job(TrainingJobName=name)

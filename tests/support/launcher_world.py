"""The launcher's world for tests: its environment, the payloads, a bucket and an image in moto."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from contract.launcher_settings import parse_image_uri
from detrain import emulator

REPO_ROOT = Path(__file__).resolve().parents[2]
PAYLOADS = REPO_ROOT / "tests" / "lambdas" / "launch_training" / "payloads"
SAMPLE_EVENTS = REPO_ROOT / "events"
ACCOUNT, REGION = emulator.EMULATED_ACCOUNT, "us-east-1"
# The launcher's one test environment (the `launcher_env` fixture sets the same).
SETTINGS = emulator.launcher_settings(ACCOUNT, REGION)
ENVIRONMENT = SETTINGS.to_environ()
BUCKET = SETTINGS.data_bucket
IMAGE_URI = SETTINGS.image_uri
REPOSITORY = SETTINGS.image.repository
# The platform key and the notifications topic as the stack names them (a test that needs them
# to exist in moto creates them under these names).
OUTPUT_KMS_KEY_ARN = SETTINGS.output_kms_key_arn
TOPIC_ARN = SETTINGS.notifications_topic_arn


def payload(name: str) -> dict:
    return json.loads((PAYLOADS / name).read_text())


def sample_event(name: str) -> dict:
    return json.loads((SAMPLE_EVENTS / name).read_text())


def register_image(uri: str = IMAGE_URI) -> None:
    image = parse_image_uri(uri)
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

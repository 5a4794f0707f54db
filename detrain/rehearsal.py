"""``detrain rehearse``: the whole upload -> event -> launch -> train flow on one machine.

1. an emulated AWS (a moto server on loopback) holding what the stack creates: the data
   bucket, the image repository with an image tagged as the stack tags it (the build
   context and cdk.json's CUDA build args), the training role, and the bucket's notification
   (same prefix/suffix filter as the stack) pointed at an SQS queue, which is how the
   emulator hands back real S3 events;
2. a sample dataset (training_image/trainer/sample_data.py), or the user's folder;
3. the operator CLI's upload, with the trigger object last; the S3 event it fires goes to
   the launcher's handler, configured from cdk.json's settings as the stack configures it;
4. the job the launcher created, read back and run by the local runner;
5. the runner's result (the caller prints the summary).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TextIO
from urllib.parse import unquote_plus

from contract.names import (
    DATASETS_PREFIX,
    REPOSITORY_NAME,
    TRIGGER_FILENAME,
    TRIGGER_KEY_SUFFIX,
    data_bucket_name,
)
from detrain import emulator
from detrain.local_runner import REPO_ROOT, JobResult, LocalRunner
from detrain.storage import Storage
from detrain.training_job import from_description
from infra import image_tag
from infra.settings import from_context, launcher_environment, load_context
from trainer import sample_data

log = logging.getLogger(__name__)

REGION = "us-east-1"
SAMPLE_DATASET = "sample-shapes"
TRAINING_ROLE_NAME = "detrain-rehearsal-training-role"
EVENTS_QUEUE = "detrain-rehearsal-s3-events"
NOTIFICATIONS_TOPIC = "detrain-rehearsal-notifications"
EVENT_WAIT_SECONDS = 20
# About two minutes of training on 2 idle CPU cores (96 images, 30 epochs), with the recipe's
# defaults for EfficientDet from scratch (no learning_rate: AdamW + one-cycle, see
# contract/recipes.py), so the summary shows a model that learns; no network here, so not
# pretrained.
REHEARSAL_HYPERPARAMETERS = {
    "model": "efficientdet",
    "backbone": "tf_lite0",
    "pretrained": "false",
    "epochs": "30",
    "batch_size": "8",
    "image_size": "128",
    "num_workers": "0",
    "valid_fraction": "0.25",
    "amp": "false",
}


class RehearsalError(RuntimeError):
    """The flow stopped before training: the message says at which step and why."""


@dataclass(frozen=True)
class EmulatedStack:
    """What the rehearsal created in the emulator, as the deployed stack would have it."""

    account: str
    bucket: str
    image_uri: str
    role_arn: str
    queue_url: str
    key_arn: str
    topic_arn: str


def create_stack(region: str = REGION) -> EmulatedStack:
    """Bucket, repository + tagged image, training role, platform key, notifications topic,
    trigger notification -> SQS."""
    import boto3

    account = boto3.client("sts").get_caller_identity()["Account"]
    bucket = data_bucket_name(account, region)
    boto3.client("s3").create_bucket(Bucket=bucket)
    settings = from_context(load_context(REPO_ROOT / "cdk.json"))
    tag = image_tag.image_tag(REPO_ROOT / "training_image", settings.image_build_args)
    repository_uri = emulator.register_image(REPOSITORY_NAME, tag)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "sagemaker.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role_arn = boto3.client("iam").create_role(
        RoleName=TRAINING_ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust)
    )["Role"]["Arn"]
    queue_url = emulator.capture_s3_events(
        bucket, EVENTS_QUEUE, prefix=DATASETS_PREFIX, suffix=TRIGGER_KEY_SUFFIX
    )
    key_arn = boto3.client("kms").create_key(Description="detrain platform key")["KeyMetadata"][
        "Arn"
    ]
    topic_arn = boto3.client("sns").create_topic(Name=NOTIFICATIONS_TOPIC)["TopicArn"]
    return EmulatedStack(
        account, bucket, f"{repository_uri}:{tag}", role_arn, queue_url, key_arn, topic_arn
    )


def launcher_settings_environment(stack: EmulatedStack) -> dict[str, str]:
    """The launcher function's environment, built from cdk.json as the stack builds it."""
    settings = from_context(load_context(REPO_ROOT / "cdk.json"))
    return launcher_environment(
        settings,
        bucket_name=stack.bucket,
        image_uri=stack.image_uri,
        training_role_arn=stack.role_arn,
        output_kms_key_arn=stack.key_arn,
        notifications_topic_arn=stack.topic_arn,
    )


def invoke_launcher(event: dict, environment: Mapping[str, str]) -> dict:
    """The launcher's handler, called as Lambda calls it, with the function's environment."""
    with emulator.environment(environment):
        from launch_training.handler import handler

        return handler(event, None)


def launched_job(response: Mapping) -> str:
    """The one job a launcher response says it created; RehearsalError with its reason if not."""
    results = response.get("results", [response])
    for result in results:
        if result.get("status") in ("launched", "already_launched"):
            return result["job_name"]
    reasons = "; ".join(str(r.get("reason") or r.get("status")) for r in results) or "no result"
    raise RehearsalError(f"the launcher created no job: {reasons}")


def _describe_exchange(event: Mapping, response: Mapping) -> str:
    records = event.get("Records", [])
    keys = [unquote_plus(r.get("s3", {}).get("object", {}).get("key", "?")) for r in records]
    results = [
        f"{r.get('status')} {r.get('job_name') or r.get('reason') or ''}".strip()
        for r in response.get("results", [response])
    ]
    return f"{', '.join(keys)} -> launcher: {'; '.join(results)}"


def dataset_name(folder: Path) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", Path(folder).resolve().name).strip("-") or "dataset"


def _upload(bucket: str, name: str, folder: Path, overrides: dict) -> None:
    from detrain.upload import UploadError, upload_dataset

    try:
        upload_dataset(bucket, name, folder, overrides=overrides)
    except UploadError as error:
        raise RehearsalError(f"the upload failed: {error}") from None


class _Progress:
    def __init__(self, out: TextIO, steps: int):
        self.out, self.steps, self.step = out, steps, 0

    def __call__(self, text: str) -> None:
        self.step += 1
        self.out.write(f"==> [{self.step}/{self.steps}] {text}\n")
        self.out.flush()

    def note(self, text: str) -> None:
        self.out.write(f"    {text}\n")
        self.out.flush()


@dataclass(frozen=True)
class Launched:
    """What steps 1-3 left: the emulated stack, the launcher's answers, the progress printer."""

    stack: EmulatedStack
    responses: list[dict]
    progress: _Progress
    started: float
    dataset: Path  # the folder that was uploaded


class FollowUp(Protocol):
    """What goes on after a successful training job, inside the emulator (``steps`` of them,
    each announced through ``launch.progress``), e.g. serving_rehearsal.ServingRehearsal."""

    steps: int

    def __call__(self, result: JobResult, launch: Launched) -> None: ...


@contextlib.contextmanager
def launched(
    workdir: Path,
    *,
    dataset: Path | None,
    images: int,
    body: dict,
    out: TextIO,
    steps: int,
) -> Iterator[Launched]:
    """Steps 1-3 (emulated stack, dataset, upload -> S3 event -> launcher) inside the emulator;
    the caller runs what was launched, then the last step lists what the bucket holds."""
    for previous in (workdir / "jobs", workdir / "events"):  # the folder holds the latest run
        shutil.rmtree(previous, ignore_errors=True)
    workdir.mkdir(parents=True, exist_ok=True)
    progress = _Progress(out, steps)
    started = time.monotonic()
    progress("starting the emulated AWS (moto on loopback) and creating the stack's resources")
    with emulator.emulated_aws(REGION, "rehearsal") as endpoint:
        stack = create_stack()
        progress.note(f"endpoint {endpoint}")
        progress.note(f"bucket s3://{stack.bucket}  image {stack.image_uri}")
        progress.note(f"role {stack.role_arn}")

        if dataset is None:
            progress(f"generating the sample dataset ({images} images of shapes, COCO)")
            sample = sample_data.generate(workdir / SAMPLE_DATASET, images=images)
            folder, name = sample.folder, SAMPLE_DATASET
            progress.note(f"{sample.images} images, {sample.boxes} boxes, classes {sample.classes}")
        else:
            progress(f"using the dataset folder {dataset}")
            folder, name = Path(dataset), dataset_name(dataset)
        progress.note(f"folder {os.path.relpath(folder)}")

        progress(f"uploading to s3://{stack.bucket}/{DATASETS_PREFIX}{name}/ and launching")
        _upload(stack.bucket, name, folder, body)
        events = emulator.receive_s3_events(stack.queue_url, EVENT_WAIT_SECONDS)
        if not events:
            raise RehearsalError(
                f"no S3 event for {DATASETS_PREFIX}{name}/{TRIGGER_FILENAME} arrived "
                f"within {EVENT_WAIT_SECONDS} s"
            )
        environment = launcher_settings_environment(stack)
        events_folder = workdir / "events"
        events_folder.mkdir(exist_ok=True)
        responses = []
        for number, event in enumerate(events, 1):
            response = invoke_launcher(event, environment)
            exchange = {"event": event, "response": response}
            (events_folder / f"{name}-{number}.json").write_text(json.dumps(exchange, indent=2))
            progress.note(f"S3 event {number}: {_describe_exchange(event, response)}")
            responses.append(response)
        yield Launched(stack, responses, progress, started, Path(folder))
        import boto3

        stored = Storage(boto3.client("s3")).list(f"s3://{stack.bucket}/")
        progress(f"done in {time.monotonic() - started:.0f} s; the emulated bucket now holds:")
        for key in stored:
            if not key.startswith(DATASETS_PREFIX):
                progress.note(f"s3://{stack.bucket}/{key}")


def rehearse(
    workdir: Path,
    *,
    dataset: Path | None = None,
    images: int = sample_data.DEFAULT_IMAGES,
    instance_count: int | None = None,
    hyperparameters: Mapping[str, str] | None = None,
    out: TextIO = sys.stdout,
    command: list[str] | None = None,
    then: FollowUp | None = None,
) -> JobResult:
    """Run the flow; the job's result (its status says whether training succeeded).

    ``command`` replaces ``training_image/train train`` (tests use a stand-in trainer);
    ``then`` goes on once the job has Completed, before the emulator stops.
    """
    workdir = Path(workdir).resolve()
    body: dict = {"hyperparameters": {**REHEARSAL_HYPERPARAMETERS, **(hyperparameters or {})}}
    if instance_count is not None:
        body["instance_count"] = instance_count
    steps = 5 + (then.steps if then else 0)
    with launched(
        workdir, dataset=dataset, images=images, body=body, out=out, steps=steps
    ) as launch:
        job_name = None
        for response in launch.responses:
            job_name = launched_job(response)
        import boto3

        description = boto3.client("sagemaker").describe_training_job(TrainingJobName=job_name)
        job = from_description(description)
        launch.progress(
            f"running {job.name} locally ({job.instance_type} x{job.instance_count} requested)"
        )
        storage = Storage(boto3.client("s3"))
        runner = LocalRunner(workdir / "jobs", storage=storage, command=command, out=out)
        result = runner.run(job)
        if then is not None and result.succeeded:
            then(result, launch)
    return result

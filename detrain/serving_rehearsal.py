"""``detrain rehearse --serve``: the rehearsal goes on past training, to a model that answers.

After the rehearsal's job has Completed (detrain/rehearsal.py), still inside the emulator:

1. ``detrain deploy``'s own calls create the Model (the job's model.tar.gz, a model role),
   the EndpointConfig (serverless) and the Endpoint, and wait for InService;
2. the model.tar.gz SageMaker would unpack is served by ``training_image/train serve`` on
   loopback, behind SageMaker's runtime front door played locally (detrain/local_endpoint.py),
   and ``detrain invoke``'s own code sends it a few of the dataset's images: boxes drawn,
   JSON lines written;
3. a batch transform over a folder of the dataset's images: a second server in batch mode
   (``SAGEMAKER_BATCH=true``), /execution-parameters read first, each file sent whole, its
   answer written as ``<name>.out``.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from contract.outputs import MODEL_ARCHIVE
from contract.serving import DEFAULT_MAX_DETECTIONS, DEFAULT_THRESHOLD
from detrain import endpoint_commands, inference_commands
from detrain import endpoint_requests as requests
from detrain.local_endpoint import FrontDoor, local_server, transform_folder
from detrain.local_runner import JobResult
from detrain.model_commands import DETECTIONS_FILE, image_files
from detrain.rehearsal import Launched

MODEL_ROLE_NAME = "detrain-rehearsal-model-role"
INVOKE_IMAGES = 4
TRANSFORM_IMAGES = 8
INVOKE_THRESHOLD = DEFAULT_THRESHOLD


@dataclass(frozen=True)
class ServingOutcome:
    endpoint: str
    invoked: int  # images sent through InvokeEndpoint
    detections: int
    invoke_folder: Path
    transformed: int  # <name>.out files written
    concurrency: int  # MaxConcurrentTransforms, from /execution-parameters
    transform_folder: Path

    def summary(self) -> str:
        return (
            f"endpoint  {self.endpoint}: InService (emulated), answered by the local server\n"
            f"invoke    {self.invoked} images, {self.detections} detections -> "
            f"{self.invoke_folder}/{DETECTIONS_FILE}\n"
            f"transform {self.transformed} images -> {self.transformed} <name>.out in "
            f"{self.transform_folder}/ (MaxConcurrentTransforms {self.concurrency})"
        )


def _model_role() -> str:
    import boto3

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
    return boto3.client("iam").create_role(
        RoleName=MODEL_ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust)
    )["Role"]["Arn"]


def deploy_job(job_name: str, image_uri: str) -> tuple[str, str]:
    """What ``detrain deploy JOB`` does, in the emulator: (endpoint name, ModelDataUrl)."""
    import boto3

    sagemaker = boto3.client("sagemaker")
    job, model_data = endpoint_commands.completed_model(sagemaker, job_name)
    name = requests.resource_name(job)
    tags = requests.tags(job, name)
    serving = requests.Serving()
    endpoint_commands.deploy(
        sagemaker,
        requests.model_request(
            name, image=image_uri, model_data_url=model_data, role_arn=_model_role(), tags=tags
        ),
        requests.endpoint_config_request(name, model_name=name, serving=serving, tags=tags),
        requests.endpoint_request(name, config_name=name, tags=tags),
    )
    endpoint_commands.wait_in_service(sagemaker, name, poll=0)
    return name, model_data


def _download(uri: str, target: Path) -> Path:
    import boto3

    bucket, _, key = uri.removeprefix("s3://").partition("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    boto3.client("s3").download_file(bucket, key, str(target))
    return target


def invoke_endpoint(endpoint: str, runtime_url: str, images: list[Path], out: Path) -> int:
    """What ``detrain invoke ENDPOINT IMAGES --out OUT`` does, with sagemaker-runtime's endpoint
    URL at the front door; the number of detections written."""
    import boto3

    runtime = boto3.client("sagemaker-runtime", endpoint_url=runtime_url)
    options = f"threshold={INVOKE_THRESHOLD},max_detections={DEFAULT_MAX_DETECTIONS}"
    return inference_commands.invoke_images(
        runtime, endpoint, images, out, options=options, progress=False
    )


class ServingRehearsal:
    """The rehearsal's follow-up (rehearsal.FollowUp): deploy, invoke, transform."""

    steps = 3

    def __init__(self, workdir: Path) -> None:
        self.folder = Path(workdir) / "serving"
        self.outcome: ServingOutcome | None = None

    def __call__(self, result: JobResult, launch: Launched) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)  # the folder holds the latest run
        progress = launch.progress
        progress(f"deploying {result.job_name} (detrain deploy: Model, EndpointConfig, Endpoint)")
        with contextlib.redirect_stdout(progress.out):
            endpoint, model_data = deploy_job(result.job_name, launch.stack.image_uri)
        model = _download(model_data, self.folder / MODEL_ARCHIVE)
        progress.note(f"model data {model_data}")

        images = image_files([launch.dataset])
        source = self.folder / "transform-input"
        source.mkdir(parents=True)
        for image in images[:TRANSFORM_IMAGES]:
            shutil.copy2(image, source / image.name)
        sent = sorted(source.iterdir())

        progress(f"invoking {endpoint}: train serve on loopback, behind the runtime's front door")
        invoked = self.folder / "invoke"
        with FrontDoor() as door, local_server(model, self.folder) as server:
            door.route(endpoint, server.url)
            progress.note(f"server {server.url} (log {server.log_file}), front door {door.url}")
            detections = invoke_endpoint(endpoint, door.url, sent[:INVOKE_IMAGES], invoked)
        progress.note(f"{min(INVOKE_IMAGES, len(sent))} images, {detections} detections")

        progress(f"batch transform of {len(sent)} images ({source.name}/, one request each)")
        results = self.folder / "transform-output"
        with local_server(model, self.folder, batch=True) as server:
            transformed = transform_folder(server.url, source, results)
        progress.note(f"{len(transformed.outputs)} <name>.out in {results}")
        self.outcome = ServingOutcome(
            endpoint=endpoint,
            invoked=min(INVOKE_IMAGES, len(sent)),
            detections=detections,
            invoke_folder=invoked,
            transformed=len(transformed.outputs),
            concurrency=transformed.concurrency,
            transform_folder=results,
        )

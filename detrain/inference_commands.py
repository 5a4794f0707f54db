"""Commands that use a hosted model: invoke (an endpoint) and transform (a batch over S3).

``invoke ENDPOINT IMAGES...`` sends each image to the endpoint (sagemaker-runtime
InvokeEndpoint) and writes what ``predict`` writes: each image with its boxes drawn, and
detections.jsonl (the drawing and writing are predict's own, detrain/model_commands.py).
``transform JOB s3://.../`` runs a SageMaker batch transform of JOB's model over every object
under the prefix (SplitType None: one object, one request) and follows it to its end.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from pathlib import Path

from botocore.exceptions import ClientError
from PIL import Image

from contract.names import Output, transform_output_uri
from contract.serving import TRANSFORM_CONTENT_TYPE
from detrain import aws_calls, endpoint_commands, endpoint_prices
from detrain import endpoint_requests as requests
from detrain.cli_error import CliError
from detrain.model_commands import DETECTIONS_FILE, image_files, write_detections
from infra.settings import sagemaker_instance_types

CONTENT_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}
TRANSFORM_ENDED = ("Completed", "Failed", "Stopped")


# ---- invoke ------------------------------------------------------------------------------


def content_type(path: Path) -> str:
    """The image's media type; other formats go as application/x-image (the server sniffs)."""
    return CONTENT_TYPES.get(path.suffix.lower(), TRANSFORM_CONTENT_TYPE)


def detections_of(answer: bytes, endpoint: str) -> list[dict]:
    """The detections in the server's JSON answer ({"detections": [{box, score, label}...]})."""
    try:
        found = json.loads(answer)["detections"]
    except (ValueError, KeyError, TypeError):
        raise CliError(
            f"endpoint {endpoint} answered {answer[:200]!r}, not a detrain server's JSON "
            "(is it serving a detrain model?)"
        ) from None
    return found


def invoke_images(
    runtime, endpoint: str, images: list[Path], out: Path, *, options: str, progress: bool
) -> int:
    """Each image sent to ``endpoint`` (InvokeEndpoint, ``options`` as CustomAttributes), drawn
    with its answer into ``out`` with one JSON line each, as predict writes; the detections."""
    classes: list[str] = []  # in the order first seen: each label keeps its colour

    def detect(path: Path, _image: Image.Image) -> list[dict]:
        answer = runtime.invoke_endpoint(
            EndpointName=endpoint,
            Body=path.read_bytes(),
            ContentType=content_type(path),
            Accept=requests.TRANSFORM_ACCEPT,
            CustomAttributes=options,
        )
        found = detections_of(answer["Body"].read(), endpoint)
        classes.extend(d["label"] for d in found if d["label"] not in classes)
        return found

    return write_detections(images, out, detect, classes, progress=progress, desc="invoke")


def _invoke(args: argparse.Namespace) -> int:
    if not 0.0 <= args.threshold <= 1.0:
        raise CliError(f"--threshold {args.threshold} is not allowed; allowed: 0 to 1")
    images = image_files(args.images)
    written = invoke_images(
        aws_calls.session(args).client("sagemaker-runtime"),
        args.endpoint,
        images,
        args.out,
        options=f"threshold={args.threshold},max_detections={args.max_detections}",
        progress=not args.no_progress,
    )
    print(f"{len(images)} images, {written} detections: {args.out}/ ({DETECTIONS_FILE})")
    return 0


# ---- transform ---------------------------------------------------------------------------


def transform_instance_type(requested: str | None, allowed: tuple[str, ...]) -> str:
    """The requested type, or the allow-list's first that batch transform has."""
    usable = tuple(t for t in allowed if t in sagemaker_instance_types("TransformInstanceType"))
    if requested is None:
        if not usable:
            raise CliError(
                f"none of this deployment's endpoint instance types ({', '.join(allowed)}) runs "
                "batch transform; add one to detrain:endpointInstanceTypes and redeploy"
            )
        return usable[0]
    if requested not in usable:
        raise CliError(
            f"--instance-type {requested} is not allowed for transform; allowed: "
            f"{', '.join(usable) or 'none'} (detrain:endpointInstanceTypes, batch-capable)"
        )
    return requested


def start_transform(sagemaker, request: dict) -> None:
    """CreateTransformJob; where a retried call finds its own first try, that job is it."""
    try:
        sagemaker.create_transform_job(**request)
    except ClientError as error:
        if "already exist" not in str(error.response.get("Error", {}).get("Message", "")):
            raise
        found = sagemaker.describe_transform_job(TransformJobName=request["TransformJobName"])
        if requests.differences(
            {
                "ModelName": request["ModelName"],
                "TransformInput.DataSource.S3DataSource.S3Uri": request["TransformInput"][
                    "DataSource"
                ]["S3DataSource"]["S3Uri"],
                "TransformOutput.S3OutputPath": request["TransformOutput"]["S3OutputPath"],
            },
            found,
        ):
            raise


def follow_transform(sagemaker, name: str, *, poll: float) -> dict:
    last = None
    while True:
        described = sagemaker.describe_transform_job(TransformJobName=name)
        status = described["TransformJobStatus"]
        if status != last:
            print(f"{datetime.now(UTC):%H:%M:%S} {name}: {status}", flush=True)
            last = status
        if status in TRANSFORM_ENDED:
            return described
        time.sleep(poll)


def _transform(args: argparse.Namespace) -> int:
    aws = aws_calls.session(args)
    outputs = endpoint_commands.serving_outputs(aws, args.stack)
    bucket = outputs[Output.BUCKET_NAME]
    instance_type = transform_instance_type(
        args.instance_type, endpoint_commands.allowed_endpoint_types(outputs)
    )
    sagemaker = aws.client("sagemaker")
    job, model_data = endpoint_commands.completed_model(sagemaker, args.job)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    name = requests.resource_name(job, suffix=f"-{stamp}")
    output = args.out or transform_output_uri(bucket, job, name)
    source = args.input if args.input.endswith("/") else f"{args.input}/"
    requests.check_transform_uris(bucket, source, output)
    model_name = requests.resource_name(job, suffix="-batch")
    endpoint_commands.ensure_model(
        sagemaker,
        requests.model_request(
            model_name,
            image=outputs[Output.IMAGE_URI],
            model_data_url=model_data,
            role_arn=outputs[Output.MODEL_ROLE_ARN],
            tags=requests.tags(job),
        ),
    )
    request = requests.transform_request(
        name,
        model_name=model_name,
        input_uri=source,
        output_uri=output,
        instance_type=instance_type,
        tags=requests.tags(job),
    )
    print(
        f"transform {name}: {endpoint_prices.real_time_cost(instance_type)}".replace(
            "until `detrain undeploy`, idle or not", "while the job runs"
        )
    )
    start_transform(sagemaker, request)
    if args.no_wait:
        print(f"transform {name} started; results will be in {output}")
        return 0
    final = follow_transform(sagemaker, name, poll=args.poll)
    if final["TransformJobStatus"] != "Completed":
        raise CliError(
            f"transform {name} is {final['TransformJobStatus']}: "
            f"{final.get('FailureReason', 'no reason given')}; its log is in CloudWatch, "
            f"/aws/sagemaker/TransformJobs, streams {name}/..."
        )
    print(f"transform {name} completed: one <image>.out (JSON) per image in {output}")
    return 0


# ---- argument parsing -------------------------------------------------------------------


def register(subcommands: argparse._SubParsersAction) -> None:
    aws = aws_calls.aws_options()

    cmd = subcommands.add_parser(
        "invoke",
        parents=[aws],
        help="detect objects in images with a deployed endpoint; draw them and write JSON lines",
        description=f"Send each image to ENDPOINT and write it with its boxes drawn, plus "
        f"{DETECTIONS_FILE}, into --out (as `detrain predict` does).",
    )
    cmd.add_argument("endpoint", help="endpoint name (`detrain endpoints` lists them)")
    cmd.add_argument("images", nargs="+", type=Path, help="image files or folders of images")
    cmd.add_argument("--out", type=Path, required=True, help="folder for the results")
    cmd.add_argument("--threshold", type=float, default=0.5, help="lowest score (default 0.5)")
    cmd.add_argument(
        "--max-detections", type=int, default=100, help="at most this many per image (100)"
    )
    cmd.add_argument("--no-progress", action="store_true", help="no progress bar")
    cmd.set_defaults(func=_invoke)

    cmd = subcommands.add_parser(
        "transform",
        parents=[aws],
        help="run a batch transform of a job's model over images in S3, and follow it",
        description="Every object under INPUT is one request to JOB's model; each answer is "
        "written as <key>.out (JSON) under --out (default: s3://<bucket>/models/JOB/transform/"
        "<transform job>/). Billed per instance-hour while it runs.",
    )
    cmd.add_argument("job", help="a Completed training job")
    cmd.add_argument("input", help="s3://<bucket>/datasets/.../ (or models/...): the images")
    cmd.add_argument("--out", help="s3://<bucket>/models/<job>/transform/...: the results")
    cmd.add_argument("--instance-type", help="default: the allow-list's first batch type")
    cmd.add_argument("--no-wait", action="store_true", help="return once the job has started")
    cmd.add_argument("--poll", type=float, default=30, help="seconds between polls (default 30)")
    cmd.set_defaults(func=_transform)

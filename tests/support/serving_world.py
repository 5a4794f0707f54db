"""The serving tests' world: a stack whose outputs include the model role and the endpoint
allow-list, a Completed training job in the moto server, and a stand-in for SageMaker's
runtime (moto's InvokeEndpoint answers canned text and reaches no container)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3

from contract.names import STACK_NAME, Output, models_uri
from tests.support.cli_world import ACCOUNT, BUCKET, IMAGE_URI

JOB = "detrain-fridge-20261206-101010"
MODEL_ROLE = f"arn:aws:iam::{ACCOUNT}:role/detrain-models"
ENDPOINT_TYPES = "ml.m5.xlarge,ml.g4dn.xlarge"  # moto 5.2 refuses ml.g5 endpoints
MODEL_DATA = f"{models_uri(BUCKET)}{JOB}/output/model.tar.gz"
SERVING_TEMPLATE = {
    "Resources": {"DataBucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": BUCKET}}},
    "Outputs": {
        Output.BUCKET_NAME: {"Value": {"Ref": "DataBucket"}},
        Output.IMAGE_URI: {"Value": IMAGE_URI},
        Output.MODEL_ROLE_ARN: {"Value": MODEL_ROLE},
        Output.ENDPOINT_INSTANCE_TYPES: {"Value": ENDPOINT_TYPES},
    },
}


def deploy_serving_stack() -> None:
    boto3.client("cloudformation").create_stack(
        StackName=STACK_NAME, TemplateBody=json.dumps(SERVING_TEMPLATE)
    )


def completed_job(name: str = JOB) -> None:
    """A training job as moto keeps it: Completed at once, its model at the usual key."""
    boto3.client("sagemaker").create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": IMAGE_URI, "TrainingInputMode": "File"},
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/detrain-training",
        OutputDataConfig={"S3OutputPath": models_uri(BUCKET)},
        ResourceConfig={"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 50},
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
    )


# What the image's server answers for one image (docs/serving.md): the documented JSON shape.
SERVER_ANSWER = {
    "detections": [
        {"box": [10.0, 12.0, 60.0, 70.0], "score": 0.91, "class_id": 2, "label": "milk_bottle"},
        {"box": [30.0, 5.0, 50.0, 40.0], "score": 0.62, "class_id": 1, "label": "carton"},
    ],
    "image": {"width": 80, "height": 80},
    "threshold": 0.3,
    "max_detections": 100,
    "model": {"family": "faster_rcnn", "backbone": "resnet50_fpn", "epoch": 3},
}


@contextmanager
def runtime_double(answer: dict = SERVER_ANSWER) -> Iterator[tuple[str, list[dict]]]:
    """A TEST DOUBLE of SageMaker's runtime: it answers InvokeEndpoint's REST path
    (POST /endpoints/<name>/invocations) with ``answer``, as a detrain server would, and records
    each request. Yields its URL (for AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME) and the requests."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.append({"path": self.path, "headers": dict(self.headers), "body": body})
            payload = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *_args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()

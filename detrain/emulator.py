"""The embedded AWS: a moto server on loopback, and the stand-ins moto needs from us.

Used by the rehearsal, the tests and the benchmarks, so each sets up the emulator the same
way: an image "pushed" to ECR without Docker, and S3 notifications captured in an SQS queue
(moto delivers real ObjectCreated events there; it cannot invoke a Lambda function), and
the launcher's settings as a stack deployed into the emulated account would set them.
"""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import time
import urllib.request
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from contract.launcher_settings import LauncherSettings
from contract.names import PROJECT, REPOSITORY_NAME, data_bucket_name

EMULATED_ACCOUNT = "123456789012"  # moto's default account

# A valid image manifest: what `docker push` would register. moto stores it as the image.
FAKE_IMAGE_MANIFEST = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
    "config": {
        "mediaType": "application/vnd.docker.container.image.v1+json",
        "size": 2,
        "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
    },
    "layers": [],
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def moto_server() -> Iterator[str]:
    """A moto server on a free loopback port while inside; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per emulated request
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def reset(endpoint: str) -> None:
    """Empty the emulated account (moto keeps its state per process, not per server)."""
    urllib.request.urlopen(
        urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    ).close()


def client_environment(endpoint: str, region: str, credentials: str) -> dict[str, str | None]:
    """What boto3 (here and in child processes) needs to talk to the emulator, and nothing else:
    None unsets a variable that could point it at a real account."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": credentials,
        "AWS_SECRET_ACCESS_KEY": credentials,
        "AWS_SESSION_TOKEN": credentials,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "AWS_PROFILE": None,
        "AWS_CONFIG_FILE": None,
        "AWS_SHARED_CREDENTIALS_FILE": None,
    }


@contextmanager
def emulated_aws(region: str, credentials: str = "emulated") -> Iterator[str]:
    """A moto server on loopback with an empty account; this process and its children talk
    to it while inside."""
    with moto_server() as endpoint:
        reset(endpoint)
        with environment(client_environment(endpoint, region, credentials)):
            yield endpoint


def launcher_settings(
    account: str = EMULATED_ACCOUNT, region: str = "us-east-1"
) -> LauncherSettings:
    """The launcher's settings in an emulated deployment: the tests' and the benchmarks' one
    launcher environment (``.to_environ()``). The image is ``register_image``'s tag ``v1``."""
    return LauncherSettings(
        data_bucket=data_bucket_name(account, region),
        image_uri=f"{account}.dkr.ecr.{region}.amazonaws.com/{REPOSITORY_NAME}:v1",
        role_arn=f"arn:aws:iam::{account}:role/{PROJECT}-training",
        allowed_instance_types=("ml.g5.xlarge", "ml.g5.2xlarge"),
        default_instance_type="ml.g5.xlarge",
        max_instance_count=2,
        max_runtime_hours=12,
        spot="preferred",
        output_kms_key_arn=(
            f"arn:aws:kms:{region}:{account}:key/0a1b2c3d-4e5f-6789-abcd-ef0123456789"
        ),
        notifications_topic_arn=f"arn:aws:sns:{region}:{account}:{PROJECT}-notifications",
    )


@contextmanager
def environment(values: Mapping[str, str | None]) -> Iterator[None]:
    """Set (or, for None, unset) environment variables while inside; restore them after."""
    saved = {key: os.environ.get(key) for key in values}
    try:
        for key, value in values.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def register_image(repository: str, tag: str) -> str:
    """Create the repository (if missing) and register an image under `tag`; its repository URI."""
    import boto3

    ecr = boto3.client("ecr")
    try:
        uri = ecr.create_repository(repositoryName=repository)["repository"]["repositoryUri"]
    except ecr.exceptions.RepositoryAlreadyExistsException:
        uri = ecr.describe_repositories(repositoryNames=[repository])["repositories"][0][
            "repositoryUri"
        ]
    ecr.put_image(
        repositoryName=repository, imageTag=tag, imageManifest=json.dumps(FAKE_IMAGE_MANIFEST)
    )
    return uri


def register_function(name: str, environment: Mapping[str, str], role_name: str) -> str:
    """A Lambda function with ``environment``, as a deployed function's configuration (its code
    is an empty package: the emulator never runs it, the caller calls the handler itself); the
    role is created when missing. Returns the function's name."""
    import boto3

    iam = boto3.client("iam")
    try:
        role = iam.get_role(RoleName=role_name)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as code:
        code.writestr("launch_training/__init__.py", "")
    boto3.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="launch_training.handler.handler",
        Code={"ZipFile": archive.getvalue()},
        Environment={"Variables": dict(environment)},
    )
    return name


def capture_s3_events(bucket: str, queue_name: str, *, prefix: str = "", suffix: str = "") -> str:
    """Point the bucket's ObjectCreated notifications (optionally filtered) at a new queue."""
    import boto3

    sqs = boto3.client("sqs")
    queue_url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    rules: Sequence[dict] = [
        {"Name": name, "Value": value}
        for name, value in (("prefix", prefix), ("suffix", suffix))
        if value
    ]
    queue: dict = {"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]}
    if rules:
        queue["Filter"] = {"Key": {"FilterRules": rules}}
    boto3.client("s3").put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [queue]}
    )
    return queue_url


def receive_s3_events(queue_url: str, timeout: float) -> list[dict]:
    """The S3 notifications delivered so far (S3's test event left out, as Lambda never gets it)."""
    import boto3

    sqs = boto3.client("sqs")
    events: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        )
        for message in response.get("Messages", []):
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            body = json.loads(message["Body"])
            if body.get("Event") != "s3:TestEvent":
                events.append(body)
        if events and not response.get("Messages"):
            break
    return events

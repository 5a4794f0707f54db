"""The SageMaker requests `detrain deploy` and `detrain transform` send, built as pure functions
(tests check each against botocore's service model), and their deterministic names.

Names are derived from the training job (or --name), with this project's prefix, so a rerun
after a failure or a retry finds what the first run made: a Model or EndpointConfig that
exists with the same spec is reused, one with another spec is refused (``SpecConflict``), as
SageMaker itself would refuse a second resource of the same name.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from contract.names import (
    DATASETS_PREFIX,
    JOB_NAME_PREFIX,
    MODELS_PREFIX,
    PROJECT,
    TAG_ENDPOINT,
    TAG_JOB,
    TAG_PROJECT,
    TRANSFORM_FOLDER,
)
from contract.sagemaker import JOB_NAME_MAX, JOB_NAME_PATTERN
from contract.serving import JSON_CONTENT_TYPE, TRANSFORM_CONTENT_TYPE
from detrain.cli_error import CliError

# Serverless: MemorySizeInMB 1024-6144 in 1 GB steps, MaxConcurrency 1-200
# (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ProductionVariantServerlessConfig.html).
SERVERLESS_MEMORY_MB = tuple(range(1024, 6145, 1024))
DEFAULT_SERVERLESS_MEMORY_MB = 4096
MAX_CONCURRENCY_RANGE = (1, 200)
DEFAULT_MAX_CONCURRENCY = 5
VARIANT = "AllTraffic"
TRANSFORM_ACCEPT = JSON_CONTENT_TYPE
NAME_MAX = JOB_NAME_MAX  # models, endpoint configs, endpoints, transform jobs: 63, one pattern


class SpecConflict(CliError):
    """A resource of that name exists with another spec."""


def resource_name(name: str, *, suffix: str = "") -> str:
    """``name`` with the project prefix and ``suffix``, within SageMaker's 63 characters (a
    name too long keeps its start and gets a short hash of the whole, so it stays unique)."""
    base = name if name.startswith(JOB_NAME_PREFIX) else JOB_NAME_PREFIX + name
    full = base + suffix
    if len(full) > NAME_MAX:
        digest = hashlib.sha1(full.encode()).hexdigest()[:6]
        full = f"{base[: NAME_MAX - len(suffix) - 7].rstrip('-')}-{digest}{suffix}"
    if not JOB_NAME_PATTERN.fullmatch(full):
        raise CliError(
            f"name {name!r} is not allowed; allowed: letters, digits and hyphens, starting and "
            f"ending with a letter or digit (SageMaker's rule for models and endpoints)"
        )
    return full


def tags(job: str, endpoint: str | None = None) -> list[dict[str, str]]:
    found = [{"Key": TAG_PROJECT, "Value": PROJECT}, {"Key": TAG_JOB, "Value": job}]
    if endpoint:
        found.append({"Key": TAG_ENDPOINT, "Value": endpoint})
    return found


@dataclass(frozen=True)
class Serving:
    """How a model is hosted: serverless (memory, concurrency) or instances."""

    instance_type: str | None = None
    instance_count: int = 1
    memory_mb: int = DEFAULT_SERVERLESS_MEMORY_MB
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY

    @property
    def serverless(self) -> bool:
        return self.instance_type is None

    def variant(self, model_name: str) -> dict[str, Any]:
        variant: dict[str, Any] = {"VariantName": VARIANT, "ModelName": model_name}
        if self.serverless:
            variant["ServerlessConfig"] = {
                "MemorySizeInMB": self.memory_mb,
                "MaxConcurrency": self.max_concurrency,
            }
        else:
            variant["InstanceType"] = self.instance_type
            variant["InitialInstanceCount"] = self.instance_count
        return variant


def check_serving(serving: Serving, allowed_types: tuple[str, ...]) -> Serving:
    """The serving choice, or a CliError naming the bad value and what is allowed."""
    if serving.memory_mb not in SERVERLESS_MEMORY_MB:
        raise CliError(
            f"--memory {serving.memory_mb} is not allowed; allowed (MB): "
            f"{', '.join(map(str, SERVERLESS_MEMORY_MB))}"
        )
    low, high = MAX_CONCURRENCY_RANGE
    if not low <= serving.max_concurrency <= high:
        raise CliError(
            f"--max-concurrency {serving.max_concurrency} is not allowed; allowed: {low} to {high}"
        )
    if not serving.serverless and serving.instance_type not in allowed_types:
        raise CliError(
            f"--instance-type {serving.instance_type} is not allowed by this deployment; allowed: "
            f"{', '.join(allowed_types) or 'none'} (detrain:endpointInstanceTypes in cdk.json)"
        )
    return serving


def model_request(
    name: str, *, image: str, model_data_url: str, role_arn: str, tags: list[dict]
) -> dict[str, Any]:
    """CreateModel: the job's model.tar.gz (unpacked into /opt/ml/model) served by `image`."""
    return {
        "ModelName": name,
        "PrimaryContainer": {"Image": image, "ModelDataUrl": model_data_url},
        "ExecutionRoleArn": role_arn,
        "Tags": tags,
    }


def endpoint_config_request(
    name: str, *, model_name: str, serving: Serving, tags: list[dict]
) -> dict[str, Any]:
    return {
        "EndpointConfigName": name,
        "ProductionVariants": [serving.variant(model_name)],
        "Tags": tags,
    }


def endpoint_request(name: str, *, config_name: str, tags: list[dict]) -> dict[str, Any]:
    return {"EndpointName": name, "EndpointConfigName": config_name, "Tags": tags}


def transform_request(
    name: str,
    *,
    model_name: str,
    input_uri: str,
    output_uri: str,
    instance_type: str,
    tags: list[dict],
) -> dict[str, Any]:
    """CreateTransformJob: each object under `input_uri` is one request (SplitType None); the
    answers go to `output_uri` as <key>.out. Concurrency and payload size come from the
    server's /execution-parameters, so the request leaves them out."""
    return {
        "TransformJobName": name,
        "ModelName": model_name,
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": input_uri}},
            "ContentType": TRANSFORM_CONTENT_TYPE,
            "CompressionType": "None",
            "SplitType": "None",
        },
        "TransformOutput": {"S3OutputPath": output_uri, "Accept": TRANSFORM_ACCEPT},
        "TransformResources": {"InstanceType": instance_type, "InstanceCount": 1},
        "Tags": tags,
    }


def check_transform_uris(bucket: str, input_uri: str, output_uri: str) -> None:
    """The model role reads datasets/ and models/ and writes models/<job>/transform/ of the
    data bucket only: anything else would fail inside the job, after minutes."""
    readable = tuple(f"s3://{bucket}/{p}" for p in (DATASETS_PREFIX, MODELS_PREFIX))
    if not input_uri.startswith(readable):
        raise CliError(
            f"input {input_uri!r} is not readable by the model role; allowed: a prefix under "
            f"{' or '.join(readable)} (upload the images there first, e.g. with `aws s3 cp "
            f"--recursive IMAGES {readable[0]}NAME/images/`)"
        )
    head = f"s3://{bucket}/{MODELS_PREFIX}"
    job, _, rest = output_uri.removeprefix(head).partition("/")
    if not output_uri.startswith(head) or not job or not rest.startswith(TRANSFORM_FOLDER):
        raise CliError(
            f"--out {output_uri!r} is not writable by the model role; allowed: a prefix under "
            f"{head}<job>/{TRANSFORM_FOLDER}"
        )


def differences(wanted: Mapping[str, Any], found: Mapping[str, Any]) -> list[str]:
    """Where `found` (a Describe* answer) differs from `wanted` (the spec, flat paths)."""
    return [
        f"{key} is {_at(found, key)!r}, not {value!r}"
        for key, value in wanted.items()
        if _at(found, key) != value
    ]


def _at(document: Mapping[str, Any], path: str) -> Any:
    value: Any = document
    for part in path.split("."):
        if isinstance(value, list):
            value = value[int(part)] if len(value) > int(part) else None
        elif isinstance(value, Mapping):
            value = value.get(part)
        else:
            return None
    return value


def model_spec(request: Mapping[str, Any]) -> dict[str, Any]:
    container = request["PrimaryContainer"]
    return {
        "PrimaryContainer.Image": container["Image"],
        "PrimaryContainer.ModelDataUrl": container["ModelDataUrl"],
        "ExecutionRoleArn": request["ExecutionRoleArn"],
    }


def endpoint_config_spec(request: Mapping[str, Any]) -> dict[str, Any]:
    (variant,) = request["ProductionVariants"]
    return {f"ProductionVariants.0.{key}": value for key, value in variant.items()}

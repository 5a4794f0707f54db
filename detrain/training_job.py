"""A training job as the local runner needs it: read back from DescribeTrainingJob, or built
for a dataset folder on this machine (``detrain local-train``).

Locations are URIs: ``s3://bucket/key`` for the (emulated) S3, ``file:///path`` for a
folder on this machine; detrain/storage.py moves data for both.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from contract import TRAINING_CHANNEL, VALIDATION_CHANNEL
from contract.layout import CHECKPOINT_PATH
from contract.outputs import job_output_key
from contract.sagemaker import (
    FILE_MODE,
    FULLY_REPLICATED,
    INPUT_MODES,
    JOB_NAME_MAX,
    S3_DISTRIBUTIONS,
)

LOCAL_INSTANCE_TYPE = "local"
_JOB_NAME_INVALID = re.compile(r"[^a-zA-Z0-9]+")


class JobSpecError(ValueError):
    """The job asks for something the local runner cannot do; the message says what is allowed."""


@dataclass(frozen=True)
class Channel:
    name: str
    uri: str  # a prefix (s3:// or file://)
    input_mode: str = FILE_MODE
    distribution: str = FULLY_REPLICATED
    content_type: str | None = None
    record_wrapper: str = "None"


@dataclass(frozen=True)
class TrainingJob:
    name: str
    hyperparameters: Mapping[str, str]
    channels: tuple[Channel, ...]
    output_path: str  # <S3OutputPath>: archives go to <output_path>/<name>/output/
    arn: str = ""
    image: str = ""
    instance_type: str = LOCAL_INSTANCE_TYPE
    instance_count: int = 1
    max_runtime_seconds: int = 86400
    checkpoint_uri: str | None = None
    checkpoint_path: str = CHECKPOINT_PATH
    environment: Mapping[str, str] = field(default_factory=dict)
    network_isolation: bool = False

    @property
    def hosts(self) -> tuple[str, ...]:
        """SageMaker's host names: algo-1 .. algo-N."""
        return tuple(f"algo-{i}" for i in range(1, self.instance_count + 1))

    def artifact_uri(self, archive: str) -> str:
        """Where SageMaker puts one of the job's archives (contract/outputs.py names them)."""
        return job_output_key(f"{self.output_path.rstrip('/')}/", self.name, archive)


def _channel(raw: Mapping[str, Any], default_mode: str) -> Channel:
    name = raw["ChannelName"]
    source = raw.get("DataSource", {}).get("S3DataSource")
    if not source:
        raise JobSpecError(f"channel {name!r} has no S3DataSource; the local runner reads S3 only")
    if source.get("S3DataType", "S3Prefix") != "S3Prefix":
        raise JobSpecError(
            f"channel {name!r}: S3DataType {source['S3DataType']!r} is not supported locally; "
            "allowed: S3Prefix"
        )
    channel = Channel(
        name=name,
        uri=source["S3Uri"],
        input_mode=raw.get("InputMode") or default_mode,
        distribution=source.get("S3DataDistributionType", FULLY_REPLICATED),
        content_type=raw.get("ContentType"),
        record_wrapper=raw.get("RecordWrapperType", "None"),
    )
    if channel.input_mode not in INPUT_MODES:
        raise JobSpecError(
            f"channel {name!r}: input mode {channel.input_mode!r} is not supported locally; "
            f"allowed: {', '.join(INPUT_MODES)}"
        )
    if channel.distribution not in S3_DISTRIBUTIONS:
        raise JobSpecError(
            f"channel {name!r}: S3DataDistributionType {channel.distribution!r} is not known; "
            f"allowed: {', '.join(S3_DISTRIBUTIONS)}"
        )
    return channel


def from_description(description: Mapping[str, Any]) -> TrainingJob:
    """DescribeTrainingJob's response -> the job the runner executes."""
    algorithm = description.get("AlgorithmSpecification", {})
    default_mode = algorithm.get("TrainingInputMode", FILE_MODE)
    checkpoint = description.get("CheckpointConfig") or {}
    resources = description.get("ResourceConfig", {})
    return TrainingJob(
        name=description["TrainingJobName"],
        arn=description.get("TrainingJobArn", ""),
        image=algorithm.get("TrainingImage", ""),
        hyperparameters=dict(description.get("HyperParameters") or {}),
        channels=tuple(_channel(c, default_mode) for c in description.get("InputDataConfig", [])),
        output_path=description["OutputDataConfig"]["S3OutputPath"],
        instance_type=resources.get("InstanceType", LOCAL_INSTANCE_TYPE),
        instance_count=int(resources.get("InstanceCount", 1)),
        max_runtime_seconds=int(
            description.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", 86400)
        ),
        checkpoint_uri=checkpoint.get("S3Uri"),
        checkpoint_path=checkpoint.get("LocalPath") or CHECKPOINT_PATH,
        environment=dict(description.get("Environment") or {}),
        network_isolation=bool(description.get("EnableNetworkIsolation", False)),
    )


def local_job_name(dataset: Path, now: datetime | None = None) -> str:
    """A valid SageMaker job name for a local run: local-<dataset>-<UTC time>."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    slug = _JOB_NAME_INVALID.sub("-", dataset.name).strip("-") or "dataset"
    return f"local-{slug[: JOB_NAME_MAX - len(stamp) - 8].strip('-')}-{stamp}"


def for_local_folder(
    dataset: Path,
    *,
    hyperparameters: Mapping[str, str],
    run_folder: Path,
    validation: Path | None = None,
    name: str | None = None,
    instance_count: int = 1,
) -> TrainingJob:
    """A job that trains on a folder of this machine; artifacts go under ``run_folder``."""
    for label, folder in (("dataset", dataset), ("validation dataset", validation)):
        if folder is not None and not Path(folder).is_dir():
            raise JobSpecError(f"{label} folder {str(folder)!r} does not exist or is not a folder")
    channels = [Channel(TRAINING_CHANNEL, Path(dataset).resolve().as_uri())]
    if validation is not None:
        channels.append(Channel(VALIDATION_CHANNEL, Path(validation).resolve().as_uri()))
    name = name or local_job_name(Path(dataset).resolve())
    run_folder = Path(run_folder).resolve()
    return TrainingJob(
        name=name,
        hyperparameters=dict(hyperparameters),
        channels=tuple(channels),
        output_path=run_folder.as_uri(),
        checkpoint_uri=(run_folder / name / "checkpoints-store").as_uri(),
        instance_count=instance_count,
    )

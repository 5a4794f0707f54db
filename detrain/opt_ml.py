"""The /opt/ml tree of one host, as SageMaker lays it out before ``docker run <image> train``.

Files (https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-running-container.html)::

    input/config/hyperparameters.json   the job's HyperParameters: a JSON object of strings
    input/config/inputdataconfig.json   per channel: [ContentType,] TrainingInputMode,
                                        S3DistributionType, RecordWrapperType
    input/config/resourceconfig.json    current_host, hosts, network_interface_name, ...
    input/config/checkpointconfig.json  LocalPath, S3Uri (only when the job has a CheckpointConfig);
                                        a local process maps /opt/ml/... to SAGEMAKER_BASE_DIR/...
    input/data/<channel>/               the channel's objects (File and FastFile modes)
    model/  output/data/  output/failure   written by the container

Each host gets its own tree; ``resource_config`` is per host, so a 2-host job is two trees
that differ only in ``current_host`` (and in their shard of a ShardedByS3Key channel).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from detrain.training_job import CONTAINER_ROOT, JobSpecError, TrainingJob

HOMOGENEOUS_GROUP = "homogeneousCluster"
# SageMaker's instances name their interface eth0; the processes of a local run talk over loopback.
CONTAINER_INTERFACE = "eth0"
LOCAL_INTERFACE = "lo"


@dataclass(frozen=True)
class Layout:
    """Paths of one host's tree; ``base`` is what ``SAGEMAKER_BASE_DIR`` (or the mount) names."""

    base: Path

    @property
    def config(self) -> Path:
        return self.base / "input" / "config"

    def channel(self, name: str) -> Path:
        return self.base / "input" / "data" / name

    @property
    def model(self) -> Path:
        return self.base / "model"

    @property
    def output_data(self) -> Path:
        return self.base / "output" / "data"

    @property
    def failure(self) -> Path:
        return self.base / "output" / "failure"


def resource_config(job: TrainingJob, host: str, interface: str) -> dict:
    hosts = list(job.hosts)
    return {
        "current_host": host,
        "current_instance_type": job.instance_type,
        "current_group_name": HOMOGENEOUS_GROUP,
        "hosts": hosts,
        "instance_groups": [
            {
                "instance_group_name": HOMOGENEOUS_GROUP,
                "instance_type": job.instance_type,
                "hosts": hosts,
            }
        ],
        "network_interface_name": interface,
    }


def input_data_config(job: TrainingJob) -> dict:
    config = {}
    for channel in job.channels:
        entry = {"ContentType": channel.content_type} if channel.content_type else {}
        entry |= {
            "TrainingInputMode": channel.input_mode,
            "S3DistributionType": channel.distribution,
            "RecordWrapperType": channel.record_wrapper,
        }
        config[channel.name] = entry
    return config


def checkpoint_path(job: TrainingJob, layout: Layout) -> Path:
    """The host folder behind CheckpointConfig.LocalPath (/opt/ml/... maps to ``base``/...)."""
    path = job.checkpoint_path.rstrip("/") or "/"
    if path != CONTAINER_ROOT and not path.startswith(CONTAINER_ROOT + "/"):
        raise JobSpecError(
            f"CheckpointConfig.LocalPath {job.checkpoint_path!r} is outside {CONTAINER_ROOT}; "
            f"a local run supports paths under {CONTAINER_ROOT}/"
        )
    return layout.base / path[len(CONTAINER_ROOT) :].lstrip("/")


def _write_json(path: Path, value: dict) -> None:
    path.write_text(json.dumps(value, indent=2) + "\n")


def write_config(job: TrainingJob, layout: Layout, *, host: str, interface: str) -> None:
    """Write input/config/*.json and create the folders SageMaker creates."""
    not_strings = sorted(k for k, v in job.hyperparameters.items() if not isinstance(v, str))
    if not_strings:
        raise JobSpecError(
            f"hyperparameter {not_strings[0]!r} is not a string; SageMaker passes strings only"
        )
    for folder in (layout.config, layout.model, layout.output_data, layout.base / "input" / "data"):
        folder.mkdir(parents=True, exist_ok=True)
    _write_json(layout.config / "hyperparameters.json", dict(job.hyperparameters))
    _write_json(layout.config / "inputdataconfig.json", input_data_config(job))
    _write_json(layout.config / "resourceconfig.json", resource_config(job, host, interface))
    if job.checkpoint_uri:
        checkpoint_path(job, layout).mkdir(parents=True, exist_ok=True)
        _write_json(
            layout.config / "checkpointconfig.json",
            {"LocalPath": job.checkpoint_path, "S3Uri": job.checkpoint_uri},
        )


def shard(names: list[str], host: str, hosts: tuple[str, ...], distribution: str) -> list[str]:
    """The objects one host gets: all of them, or every N-th key for ShardedByS3Key."""
    if distribution != "ShardedByS3Key" or len(hosts) == 1:
        return names
    return names[hosts.index(host) :: len(hosts)]

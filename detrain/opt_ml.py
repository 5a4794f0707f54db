"""Write the /opt/ml tree of one host, as SageMaker lays it out before ``docker run <image> train``.

The paths are the contract's ``Layout`` (contract/layout.py), the one the trainer reads;
a local process maps /opt/ml/... to SAGEMAKER_BASE_DIR/....

Each host gets its own tree; ``resource_config`` is per host, so a 2-host job is two trees
that differ only in ``current_host`` (and in their shard of a ShardedByS3Key channel).
"""

from __future__ import annotations

from pathlib import Path

from contract.layout import CONTAINER_ROOT, Layout, write_input_config
from contract.sagemaker import SHARDED_BY_S3_KEY
from detrain.training_job import JobSpecError, TrainingJob

HOMOGENEOUS_GROUP = "homogeneousCluster"
# SageMaker's instances name their interface eth0; the processes of a local run talk over loopback.
CONTAINER_INTERFACE = "eth0"
LOCAL_INTERFACE = "lo"


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
    path = layout.host_path(job.checkpoint_path)
    if path is None:
        raise JobSpecError(
            f"CheckpointConfig.LocalPath {job.checkpoint_path!r} is outside {CONTAINER_ROOT}; "
            f"a local run supports paths under {CONTAINER_ROOT}/"
        )
    return path


def write_config(job: TrainingJob, layout: Layout, *, host: str, interface: str) -> None:
    """Write input/config/*.json and create the folders SageMaker creates."""
    checkpoints = checkpoint_path(job, layout) if job.checkpoint_uri else None
    checkpoint_config = None
    if checkpoints is not None:
        checkpoint_config = {"LocalPath": job.checkpoint_path, "S3Uri": job.checkpoint_uri}
    try:
        write_input_config(
            layout,
            hyperparameters=job.hyperparameters,
            input_data_config=input_data_config(job),
            resource_config=resource_config(job, host, interface),
            checkpoint_config=checkpoint_config,
        )
    except ValueError as error:
        raise JobSpecError(str(error)) from None
    if checkpoints is not None:
        checkpoints.mkdir(parents=True, exist_ok=True)


def shard(names: list[str], host: str, hosts: tuple[str, ...], distribution: str) -> list[str]:
    """The objects one host gets: all of them, or every N-th key for ShardedByS3Key."""
    if distribution != SHARDED_BY_S3_KEY or len(hosts) == 1:
        return names
    return names[hosts.index(host) :: len(hosts)]

"""The /opt/ml tree of one training host: what SageMaker writes, what the container writes.

https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-running-container.html::

    input/config/hyperparameters.json   the job's HyperParameters: a JSON object of strings
    input/config/inputdataconfig.json   per channel: TrainingInputMode, S3DistributionType, ...
    input/config/resourceconfig.json    current_host, hosts, network_interface_name, ...
    input/config/checkpointconfig.json  LocalPath, S3Uri (when the job has a CheckpointConfig)
    input/data/<channel>/               the channel's objects (File and FastFile modes)
    model/                              uploaded as model.tar.gz
    output/data/                        uploaded as output.tar.gz
    output/failure                      its first 1,024 characters become the FailureReason
    checkpoints/                        the default CheckpointConfig.LocalPath

One ``Layout(base)`` serves the trainer (which reads it), the local runner (which writes it)
and the tests (which build fake trees). ``SAGEMAKER_BASE_DIR`` (the training toolkit's
convention) replaces /opt/ml for a process outside a container.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

CONTAINER_ROOT = "/opt/ml"
BASE_DIR_VARIABLE = "SAGEMAKER_BASE_DIR"
CHECKPOINT_PATH = f"{CONTAINER_ROOT}/checkpoints"  # CheckpointConfig.LocalPath by default


@dataclass(frozen=True)
class Layout:
    """Every path of one host's tree, derived from ``base`` (/opt/ml in a container)."""

    base: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "base", Path(self.base))

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> Layout:
        """``SAGEMAKER_BASE_DIR`` when set, else /opt/ml."""
        return cls(Path(environ.get(BASE_DIR_VARIABLE) or CONTAINER_ROOT))

    @property
    def config(self) -> Path:
        return self.base / "input" / "config"

    @property
    def hyperparameters_file(self) -> Path:
        return self.config / "hyperparameters.json"

    @property
    def input_data_config_file(self) -> Path:
        return self.config / "inputdataconfig.json"

    @property
    def resource_config_file(self) -> Path:
        return self.config / "resourceconfig.json"

    @property
    def checkpoint_config_file(self) -> Path:
        return self.config / "checkpointconfig.json"

    @property
    def data(self) -> Path:
        return self.base / "input" / "data"

    def channel(self, name: str) -> Path:
        return self.data / name

    @property
    def model(self) -> Path:
        return self.base / "model"

    @property
    def output_data(self) -> Path:
        return self.base / "output" / "data"

    @property
    def failure(self) -> Path:
        return self.base / "output" / "failure"

    @property
    def checkpoints(self) -> Path:
        return self.base / "checkpoints"  # CHECKPOINT_PATH on this host

    def host_path(self, container_path: str) -> Path | None:
        """The folder behind a container path under /opt/ml (e.g. CheckpointConfig.LocalPath);
        None for a path outside /opt/ml."""
        path = PurePosixPath(container_path)
        if not path.is_relative_to(CONTAINER_ROOT):
            return None
        return self.base.joinpath(*path.relative_to(CONTAINER_ROOT).parts)


def write_input_config(
    layout: Layout,
    *,
    hyperparameters: Mapping[str, str],
    input_data_config: Mapping[str, Mapping[str, str]],
    resource_config: Mapping[str, object],
    checkpoint_config: Mapping[str, str] | None = None,
) -> None:
    """Write input/config/*.json as SageMaker does before ``docker run <image> train``, and create
    the folders it creates. Hyperparameter values must be strings (SageMaker passes no other)."""
    not_strings = sorted(k for k, v in hyperparameters.items() if not isinstance(v, str))
    if not_strings:
        raise ValueError(
            f"hyperparameter {not_strings[0]!r} is not a string; SageMaker passes strings only"
        )
    for folder in (layout.config, layout.model, layout.output_data, layout.data):
        folder.mkdir(parents=True, exist_ok=True)
    files = {
        layout.hyperparameters_file: dict(hyperparameters),
        layout.input_data_config_file: dict(input_data_config),
        layout.resource_config_file: dict(resource_config),
    }
    if checkpoint_config is not None:
        files[layout.checkpoint_config_file] = dict(checkpoint_config)
    for path, value in files.items():
        path.write_text(json.dumps(value, indent=2) + "\n")

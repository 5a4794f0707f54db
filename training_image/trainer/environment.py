"""The SageMaker training environment, read from the files under /opt/ml.

SageMaker starts the container as ``<image> train`` and describes the job only
in files (https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-running-container.html):

- ``input/config/hyperparameters.json``: string values, raw or JSON-encoded
- ``input/config/inputdataconfig.json``: one entry per channel
- ``input/config/resourceconfig.json``: ``current_host`` and ``hosts``
- ``input/config/checkpointconfig.json``: ``LocalPath`` when checkpointing is on
- ``input/data/<channel>/``: each channel's files (File and FastFile modes)
- ``model/``, ``output/data/``: uploaded as model.tar.gz and output.tar.gz
- ``output/failure``: its first 1,024 characters become the FailureReason

``SAGEMAKER_BASE_DIR`` (the training toolkit's convention) replaces /opt/ml. The paths are
the contract's ``Layout`` (contract/layout.py), the same one the local runner writes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from contract import CHANNELS, TRAINING_CHANNEL
from contract.hyperparameters import HyperparameterError, Hyperparameters, parse
from contract.layout import Layout
from contract.sagemaker import FILE_MODE, FULLY_REPLICATED, INPUT_MODES, S3_DISTRIBUTIONS
from trainer.errors import ConfigError

DEFAULT_HOST = "algo-1"


def base_dir() -> Path:
    return Layout.from_environ().base


def model_dir(base: Path) -> Path:
    return Layout(base).model


def failure_file(base: Path) -> Path:
    return Layout(base).failure


@dataclass(frozen=True)
class TrainingEnvironment:
    """Everything the trainer needs to know about its job; built by ``load``."""

    base_dir: Path
    job_name: str
    hyperparameters: Hyperparameters
    channels: Mapping[str, Path]
    current_host: str
    hosts: tuple[str, ...]
    checkpoint_dir: Path
    network_interface: str = ""
    distributions: Mapping[str, str] = field(default_factory=dict)  # channel -> S3DistributionType

    @property
    def model_dir(self) -> Path:
        return Layout(self.base_dir).model

    @property
    def output_data_dir(self) -> Path:
        return Layout(self.base_dir).output_data

    @property
    def failure_file(self) -> Path:
        return Layout(self.base_dir).failure


def _read_json(path: Path, default: Any) -> Any:
    if not path.is_file():
        return default
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ConfigError(f"{path.name} is not valid JSON ({error})") from None


def _read_object(path: Path) -> dict[str, Any]:
    value = _read_json(path, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{path.name} must hold a JSON object, found {type(value).__name__}")
    return value


def _hyperparameters(layout: Layout) -> Hyperparameters:
    try:
        return parse(_read_object(layout.hyperparameters_file))
    except HyperparameterError as error:
        raise ConfigError(str(error)) from None


def _channels(layout: Layout) -> dict[str, Path]:
    data = layout.data
    declared = _read_object(layout.input_data_config_file)
    if declared:
        names = list(declared)
    else:
        names = sorted(p.name for p in data.iterdir() if p.is_dir()) if data.is_dir() else []
    channels = {}
    for name in names:
        if name not in CHANNELS:
            raise ConfigError(
                f"channel {name!r} is not used by this trainer; allowed: {', '.join(CHANNELS)}"
            )
        mode = (declared.get(name) or {}).get("TrainingInputMode", FILE_MODE)
        if mode not in INPUT_MODES:
            raise ConfigError(
                f"channel {name!r} has TrainingInputMode {mode!r}; "
                f"allowed: {', '.join(INPUT_MODES)}"
            )
        if not (data / name).is_dir():
            raise ConfigError(f"channel {name!r} is declared but {data / name} does not exist")
        channels[name] = data / name
    if TRAINING_CHANNEL not in channels:
        raise ConfigError(
            f"the {TRAINING_CHANNEL!r} channel is required; "
            f"found: {', '.join(channels) or 'no channels'}"
        )
    return channels


def _distributions(layout: Layout, channels: Mapping[str, Path]) -> dict[str, str]:
    declared = _read_object(layout.input_data_config_file)
    found = {}
    for name in channels:
        kind = (declared.get(name) or {}).get("S3DistributionType", FULLY_REPLICATED)
        if kind not in S3_DISTRIBUTIONS:
            raise ConfigError(
                f"channel {name!r} has S3DistributionType {kind!r}; "
                f"allowed: {', '.join(S3_DISTRIBUTIONS)}"
            )
        found[name] = kind
    return found


def _checkpoint_dir(layout: Layout) -> Path:
    local = _read_object(layout.checkpoint_config_file).get("LocalPath")
    if not local:
        return layout.checkpoints
    return layout.host_path(local) or Path(local)


def load(base: Path | None = None) -> TrainingEnvironment:
    """Read and validate the job's description; raises ConfigError naming the bad value."""
    layout = Layout(base) if base else Layout.from_environ()
    base = layout.base
    resources = _read_object(layout.resource_config_file)
    current_host = str(resources.get("current_host", DEFAULT_HOST))
    hosts = tuple(str(h) for h in resources.get("hosts", [current_host]))
    if current_host not in hosts:
        raise ConfigError(
            f"resourceconfig.json: current_host {current_host!r} is not in hosts {list(hosts)}"
        )
    channels = _channels(layout)
    return TrainingEnvironment(
        base_dir=base,
        job_name=os.environ.get("TRAINING_JOB_NAME", "local"),
        hyperparameters=_hyperparameters(layout),
        channels=MappingProxyType(channels),
        current_host=current_host,
        hosts=hosts,
        checkpoint_dir=_checkpoint_dir(layout),
        network_interface=str(resources.get("network_interface_name", "")),
        distributions=MappingProxyType(_distributions(layout, channels)),
    )

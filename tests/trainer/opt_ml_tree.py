"""A fake /opt/ml tree and a way to run the image's `train` entry against it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TRAIN = REPO_ROOT / "training_image" / "train"
TINY = {
    "model": "efficientdet",
    "backbone": "tf_lite0",
    "pretrained": "false",
    "epochs": "1",
    "batch_size": "4",
    "image_size": "128",
    "num_workers": "0",
}


@dataclass
class OptMl:
    """A SageMaker-style /opt/ml tree; ``base`` is what SAGEMAKER_BASE_DIR points at."""

    base: Path

    @property
    def config(self) -> Path:
        return self.base / "input" / "config"

    def channel(self, name: str) -> Path:
        path = self.base / "input" / "data" / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def write_config(self, name: str, value: object) -> None:
        self.config.mkdir(parents=True, exist_ok=True)
        (self.config / name).write_text(json.dumps(value))

    def hyperparameters(self, values: dict[str, str]) -> None:
        self.write_config("hyperparameters.json", values)

    def declare_channels(self, *names: str, mode: str = "File") -> None:
        self.write_config(
            "inputdataconfig.json",
            {
                n: {"TrainingInputMode": mode, "S3DistributionType": "FullyReplicated"}
                for n in names
            },
        )

    @property
    def model_dir(self) -> Path:
        return self.base / "model"

    @property
    def failure(self) -> Path:
        return self.base / "output" / "failure"

    @property
    def output_data(self) -> Path:
        return self.base / "output" / "data"


def train_env(opt_ml: OptMl) -> dict[str, str]:
    """The child's environment: the dev venv's python first on PATH, as the brief's local run."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["SAGEMAKER_BASE_DIR"] = str(opt_ml.base)
    env["TRAINING_JOB_NAME"] = "detrain-test"
    env.pop("PYTHONPATH", None)
    return env


def run_train(opt_ml: OptMl, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(TRAIN), "train", *args],
        env=train_env(opt_ml),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )

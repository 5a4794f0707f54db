"""A fake /opt/ml tree, and two ways to run the image's `train` entry against it: as the
process SageMaker starts (``run_train``), or in this process (``run_main``), for tests about
what the entry does rather than about the process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from contract.layout import BASE_DIR_VARIABLE, Layout
from contract.sagemaker import FILE_MODE, FULLY_REPLICATED

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


@dataclass(frozen=True)
class OptMl(Layout):
    """The contract's /opt/ml layout, with helpers that fill it; ``base`` is what
    SAGEMAKER_BASE_DIR points at."""

    def channel(self, name: str) -> Path:
        path = super().channel(name)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def write_config(self, name: str, value: object) -> None:
        self.config.mkdir(parents=True, exist_ok=True)
        (self.config / name).write_text(json.dumps(value))

    def hyperparameters(self, values: dict[str, str]) -> None:
        self.write_config("hyperparameters.json", values)

    def declare_channels(self, *names: str, mode: str = FILE_MODE) -> None:
        self.write_config(
            self.input_data_config_file.name,
            {n: {"TrainingInputMode": mode, "S3DistributionType": FULLY_REPLICATED} for n in names},
        )

    @property
    def model_dir(self) -> Path:
        return self.model


def train_env(opt_ml: OptMl) -> dict[str, str]:
    """The child's environment: the dev venv's python first on PATH, as the brief's local run."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env[BASE_DIR_VARIABLE] = str(opt_ml.base)
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


def run_main(opt_ml: OptMl, *args: str) -> int:
    """``trainer.main.main(["train", *args])`` in this process against ``opt_ml``; its exit code.

    The environment the process would get (SAGEMAKER_BASE_DIR, the job name), and the SIGTERM
    handler the trainer installs, are put back as they were afterwards.
    """
    from trainer import main as trainer_main

    saved = {name: os.environ.get(name) for name in (BASE_DIR_VARIABLE, "TRAINING_JOB_NAME")}
    handler = signal.getsignal(signal.SIGTERM)
    os.environ[BASE_DIR_VARIABLE] = str(opt_ml.base)
    os.environ["TRAINING_JOB_NAME"] = "detrain-test"
    try:
        return trainer_main.main(["train", *args])
    finally:
        signal.signal(signal.SIGTERM, handler)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

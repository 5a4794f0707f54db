"""One finished tiny job: a real `train train` run that many tests read instead of each
training their own (the ``finished_job`` fixture of tests/trainer/conftest.py)."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from contract.metrics import metric_definitions
from tests.support.opt_ml import TINY, OptMl, run_train
from tests.support.synthetic import write_coco

IMAGES = 16
EPOCHS = 5
BATCH_SIZE = 4
# What the SageMaker Python SDK sends: every value JSON-encoded, and its own keys besides.
SDK_HYPERPARAMETERS = {
    **{
        key: json.dumps(value)
        for key, value in {
            **TINY,
            "epochs": EPOCHS,
            "batch_size": BATCH_SIZE,
            "pretrained": False,
            "valid_fraction": 0.25,
        }.items()
    },
    "sagemaker_program": '"train"',
    "sagemaker_submit_directory": '""',
}


@dataclass(frozen=True)
class FinishedJob:
    opt_ml: OptMl
    run: subprocess.CompletedProcess

    @property
    def log(self) -> str:
        return self.run.stdout

    @property
    def checkpoints(self) -> Path:
        return self.opt_ml.base / "checkpoints"


def train_tiny_job(base: Path) -> FinishedJob:
    """EfficientDet-Lite0 at 128 px, 5 epochs of 3 steps on 16 generated COCO images, as a
    first start on SageMaker: SDK-encoded hyperparameters, a resource and a checkpoint config,
    an empty checkpoint folder, and a stray ``_launch.json`` in the channel (which says 2 epochs
    and must be ignored)."""
    opt_ml = OptMl(base)
    write_coco(opt_ml.channel("training"), IMAGES)
    (opt_ml.channel("training") / "_launch.json").write_text('{"epochs": 2}')
    opt_ml.declare_channels("training")
    opt_ml.write_config("resourceconfig.json", {"current_host": "algo-1", "hosts": ["algo-1"]})
    opt_ml.write_config("checkpointconfig.json", {"LocalPath": "/opt/ml/checkpoints"})
    (base / "checkpoints").mkdir()
    opt_ml.hyperparameters(SDK_HYPERPARAMETERS)
    return FinishedJob(opt_ml, run_train(opt_ml, timeout=900))


def metric_lines(log: str) -> list[dict[str, float]]:
    """What SageMaker's MetricDefinitions extract from a job's log, line by line."""
    found = []
    for line in log.splitlines():
        values = {}
        for definition in metric_definitions():
            match = re.search(definition["Regex"], line)
            if match:
                values[definition["Name"]] = float(match.group(1))
        if values:
            found.append(values)
    return found

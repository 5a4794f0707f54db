"""DataLoader workers default to the vCPUs per GPU; GPU loaders pin, persist and prefetch."""

import pytest
import torch

from contract.hyperparameters import HyperparameterError, from_values
from trainer import loading


@pytest.mark.parametrize(
    ("requested", "cpus", "gpus", "expected"),
    [
        (-1, 4, 1, 4),  # ml.g5.xlarge: 4 vCPUs, 1 A10G
        (-1, 48, 4, 12),  # ml.g5.12xlarge: 12 vCPUs per GPU
        (-1, 192, 8, 12),  # ml.p5.48xlarge: capped at 12 a process
        (-1, 2, 0, 2),  # no GPU: every vCPU
        (-1, 2, 4, 1),  # fewer vCPUs than GPUs: still one worker
        (6, 4, 1, 4),  # an explicit count is capped at the vCPUs
        (0, 4, 1, 0),  # no workers: load in the training process
    ],
)
def test_worker_count(requested, cpus, gpus, expected):
    assert loading.workers(requested, cpus=cpus, gpus=gpus) == expected


def test_the_default_is_automatic_and_below_minus_one_is_refused():
    assert from_values({}).num_workers == loading.AUTO
    with pytest.raises(HyperparameterError, match="'num_workers' = -2 is out of range"):
        from_values({"num_workers": -2})


def test_gpu_loaders_pin_persist_and_prefetch():
    gpu = loading.options(2, 8, torch.device("cuda"))
    assert gpu["pin_memory"] and gpu["persistent_workers"]
    assert gpu["prefetch_factor"] == loading.PREFETCH_BATCHES
    assert gpu["multiprocessing_context"] == "fork"
    cpu = loading.options(0, 8, torch.device("cpu"))
    assert cpu == {
        "batch_size": 8,
        "num_workers": 0,
        "pin_memory": False,
        "multiprocessing_context": None,
    }

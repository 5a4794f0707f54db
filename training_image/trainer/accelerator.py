"""Which device to train on, and a clear failure when the GPU's driver is too old for this torch.

PyPI's torch wheels carry their own CUDA runtime; only the host's driver comes
from SageMaker. A driver older than the runtime needs (CUDA 13 needs driver >= 580)
leaves ``torch.cuda.is_available()`` False on a GPU instance: training would
silently crawl on the CPU. That is reported as a ConfigError naming both versions and what to do.
Drivers older than the CUDA build but supported by the image's forward-compatibility package never
get here: ``train`` switches that package on at start-up (trainer/forward_compat.py).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from contract.hyperparameters import Hyperparameters
from contract.startup_log import device_line
from trainer import forward_compat
from trainer.errors import ConfigError

DRIVER_VERSION_FILE = forward_compat.DRIVER_VERSION_FILE
log = logging.getLogger(__name__)


def driver_version(version_file: Path = DRIVER_VERSION_FILE) -> str | None:
    """The host's NVIDIA driver version, when one is loaded."""
    try:
        text = version_file.read_text()
    except OSError:
        return None
    return forward_compat.driver_version(text) or "unknown"


def select(local_rank: int = 0, version_file: Path = DRIVER_VERSION_FILE) -> torch.device:
    """The process's device, logged as contract/startup_log.py's device line."""
    driver = driver_version(version_file)
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
        gpu = torch.cuda.get_device_properties(device)
        memory_gib = gpu.total_memory / 2**30
        log.info("%s", device_line(str(device), gpu.name, memory_gib, driver, torch.version.cuda))
        return device
    if driver is not None and torch.version.cuda:
        raise ConfigError(
            f"this instance has an NVIDIA GPU (driver {driver}) but torch {torch.__version__} "
            f"(CUDA {torch.version.cuda}) cannot use it: the driver is too old for CUDA "
            f"{torch.version.cuda}. {_advice(torch.version.cuda)}"
        )
    log.info("%s", device_line("cpu", None, None, driver, torch.version.cuda))
    return torch.device("cpu")


def _advice(cuda: str) -> str:
    if cuda.startswith("12."):  # the default build: only a host older than R470 ends up here
        return (
            "This CUDA 12 build runs on drivers >= 525, and on data-center GPUs with R470 "
            "(>= 470.57.02) or a later supported branch through the forward-compatibility "
            "package the image carries (see the 'CUDA forward compatibility' line at the top of "
            "the log). Use an instance type with a newer driver."
        )
    return (
        "Redeploy with the default CUDA build, `cdk deploy -c detrain:cuda=12.6` (docker: build "
        "without --build-arg TORCH_INDEX_URL), which runs on drivers >= 470.57.02, or use an "
        "instance with a newer driver."
    )


def amp_dtype(hp: Hyperparameters, device: torch.device) -> torch.dtype | None:
    """The autocast type of a run: none on the CPU or with amp off; bfloat16 or float16.

    float16 needs a GradScaler (``needs_loss_scaling``); bfloat16 has float32's range and doesn't.
    """
    if not hp.amp or device.type != "cuda":
        return None
    return torch.bfloat16 if hp.amp_dtype == "bfloat16" else torch.float16


def needs_loss_scaling(dtype: torch.dtype | None) -> bool:
    return dtype == torch.float16


def optimizer_options(params: list[torch.Tensor]) -> dict[str, bool]:
    """One fused kernel per optimizer step where the parameters live on a GPU."""
    return {"fused": True} if params and all(p.is_cuda for p in params) else {}

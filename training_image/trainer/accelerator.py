"""Which device to train on, and a clear failure when the GPU's driver is too old for this torch.

PyPI's torch wheels carry their own CUDA runtime; only the host's driver comes
from SageMaker. A driver older than the runtime needs (CUDA 13 needs driver >= 580)
leaves ``torch.cuda.is_available()`` False on a GPU instance: training would
silently crawl on the CPU. That is reported as a ConfigError naming both versions.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from trainer.errors import ConfigError
from trainer_spec.hyperparameters import Hyperparameters

DRIVER_VERSION_FILE = Path("/proc/driver/nvidia/version")
CUDA_12_INDEX = "https://download.pytorch.org/whl/cu126"


def driver_version(version_file: Path = DRIVER_VERSION_FILE) -> str | None:
    """The host's NVIDIA driver version, when one is loaded."""
    try:
        text = version_file.read_text()
    except OSError:
        return None
    match = re.search(r"Kernel Module\s+(?:for \S+\s+)?(\d+\.\d+(?:\.\d+)?)", text)
    return match.group(1) if match else "unknown"


def select(local_rank: int = 0, version_file: Path = DRIVER_VERSION_FILE) -> torch.device:
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    driver = driver_version(version_file)
    if driver is not None and torch.version.cuda:
        raise ConfigError(
            f"this instance has an NVIDIA GPU (driver {driver}) but torch {torch.__version__} "
            f"(CUDA {torch.version.cuda}) cannot use it: the driver is too old for CUDA "
            f"{torch.version.cuda}. Use an instance with a newer driver, or redeploy with "
            "`cdk deploy -c detrain:cuda=12.6` "
            f"(docker: --build-arg TORCH_INDEX_URL={CUDA_12_INDEX})"
        )
    return torch.device("cpu")


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

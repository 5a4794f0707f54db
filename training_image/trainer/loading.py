"""DataLoader settings: how many workers, and how they hand batches to the GPU.

``num_workers = -1`` (the default) gives each GPU process its share of this host's vCPUs
(``os.sched_getaffinity``, which honours a container's CPU set): 4 on an ml.g5.xlarge
(4 vCPUs, 1 GPU), 12 on an ml.p5 (192 vCPUs, 8 GPUs, capped at 12 per process). On a GPU the
workers stay up across epochs (``persistent_workers``), each keeps ``PREFETCH_BATCHES``
batches ready, and batches land in pinned memory so the copy to the GPU is asynchronous.
"""

from __future__ import annotations

import os

import torch

AUTO = -1
MAX_AUTO_WORKERS = 12
PREFETCH_BATCHES = 4


def vcpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def vcpus_per_gpu() -> int:
    """This host's vCPUs over its GPUs (all of them without a GPU)."""
    return vcpus() // max(1, torch.cuda.device_count())


def workers(requested: int, *, cpus: int | None = None, gpus: int | None = None) -> int:
    """``requested`` capped at the CPU count; AUTO: the vCPUs per GPU (all of them on a CPU)."""
    cpus = vcpus() if cpus is None else cpus
    if requested != AUTO:
        return min(requested, cpus)
    gpus = torch.cuda.device_count() if gpus is None else gpus
    return max(1, min(MAX_AUTO_WORKERS, cpus // max(1, gpus)))


def options(requested_workers: int, batch_size: int, device: torch.device) -> dict:
    """Keyword arguments for a DataLoader feeding ``device``."""
    count = workers(requested_workers)
    on_gpu = device.type == "cuda"
    settings = {
        "batch_size": batch_size,
        "num_workers": count,
        "pin_memory": on_gpu,
        # Loader workers fork: a data-parallel rank is itself a spawned process, whose default
        # start method (spawn) would pickle the dataset into every worker; forked ones inherit it.
        "multiprocessing_context": "fork" if count else None,
    }
    if count and on_gpu:
        settings.update(persistent_workers=True, prefetch_factor=PREFETCH_BATCHES)
    return settings

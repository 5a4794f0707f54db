"""Inside ``train()``: what changes when the job is data-parallel (no-ops in one process).

The collectives the loop calls on every rank the same number of times (``mean``,
``broadcast``, ``gather``, ``barrier``, ``SharedStop.is_set``), the DDP wrapper, the
classes check across hosts, and the linear scaling rule: effective batch size =
batch_size x world size, ``learning_rate`` x world size (the warm-up in engine.schedule
applies).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import torch
import torch.distributed as dist

from trainer.errors import DataError

log = logging.getLogger(__name__)


def active() -> bool:
    return dist.is_available() and dist.is_initialized()


def scale_learning_rate(
    optimizer: torch.optim.Optimizer, *, batch_size: int, world_size: int
) -> None:
    """The linear scaling rule (Goyal et al., 2017): ``learning_rate`` x world size."""
    for group in optimizer.param_groups:
        base = group["lr"]
        group["lr"] = base * world_size
    log.info(
        "effective batch size %d (batch_size %d x %d processes); learning rate %g "
        "(learning_rate %g x %d, linear scaling rule)",
        batch_size * world_size,
        batch_size,
        world_size,
        base * world_size,
        base,
        world_size,
    )


def mean(value: float) -> float:
    if not active():
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=collective_device())
    dist.all_reduce(tensor)
    return float(tensor.item()) / dist.get_world_size()


def barrier() -> None:
    if active():
        dist.barrier()


def broadcast(value: Any) -> Any:
    """Rank 0's ``value`` on every rank (e.g. the checkpoint rank 0 picked)."""
    if not active():
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0, device=collective_device())
    return holder[0]


def gather(values: list) -> list:
    """Every rank's ``values``, concatenated in rank order, on every rank."""
    if not active():
        return values
    parts: list = [None] * dist.get_world_size()
    dist.all_gather_object(parts, values)
    return [v for part in parts for v in part]


def check_same_classes(class_names: tuple[str, ...], host: str) -> None:
    """Every host must train the same classes (with ShardedByS3Key each reads its own part)."""
    if not active():
        return
    seen: list = [None] * dist.get_world_size()
    dist.all_gather_object(seen, (host, list(class_names)))
    for other, names in seen:
        if names != list(class_names):
            raise DataError(
                f"the hosts' data declare different classes: {host} has {list(class_names)}, "
                f"{other} has {names}; every host's shard must declare the same classes"
            )


def wrap(model: Any, device: torch.device) -> None:
    """Route the model's training forward pass through DistributedDataParallel."""
    if not active():
        return
    from torch.nn.parallel import DistributedDataParallel

    model.forward_module = DistributedDataParallel(
        model.module,
        device_ids=[device.index] if device.type == "cuda" else None,
        # No buffer broadcast in forward: validation runs a different number of batches per
        # rank, and a collective there would hang. (`broadcast_buffers` exists in every torch 2.x.)
        broadcast_buffers=False,
    )


class SharedStop:
    """A stop flag all ranks agree on: set on any rank (SIGTERM) -> set on every rank.

    ``is_set`` is a collective (one all-reduce): call it the same number of times on each rank.
    """

    def __init__(self, local: threading.Event) -> None:
        self.local = local

    def is_set(self) -> bool:
        if not active():
            return self.local.is_set()
        flag = torch.tensor([int(self.local.is_set())], device=collective_device())
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())


def collective_device() -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")

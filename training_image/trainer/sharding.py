"""How the data is split among the ranks, next to engine.EpochSampler that walks a share.

The split follows the channel's ``S3DistributionType`` (inputdataconfig.json):
``FullyReplicated`` (every host holds the whole dataset): every rank builds the same
train/validation split and trains on its 1/world share. ``ShardedByS3Key`` (each host
holds its own part): each host splits its part and shards it across its own processes
only; the validation set is the union of every host's held-out part. Either way each
rank validates a disjoint share of the validation set and rank 0 scores the gathered
predictions, so mAP is over the whole validation set. Each epoch takes the same number
of steps on every rank (the largest share, padded by repeating images).
"""

from __future__ import annotations

import math
import os

import torch
import torch.distributed as dist

from contract import TRAINING_CHANNEL, VALIDATION_CHANNEL
from contract.sagemaker import SHARDED_BY_S3_KEY
from trainer import collectives
from trainer.engine import World
from trainer.environment import TrainingEnvironment


def host_local(env: TrainingEnvironment, channel: str) -> bool:
    """True when each host holds its own part of the channel (ShardedByS3Key on several hosts)."""
    return len(env.hosts) > 1 and env.distributions.get(channel) == SHARDED_BY_S3_KEY


def shares(env: TrainingEnvironment, world: World) -> tuple[World, World]:
    """Among which processes the training and the validation tables are split.

    All ranks, when every host holds the same data; this host's processes only, when the
    host holds its own part (ShardedByS3Key). Validation follows its own channel, or the
    training channel when it is split off the training data.
    """
    local_size = int(os.environ.get("LOCAL_WORLD_SIZE", 1))
    on_host = World(rank=world.local_rank, size=local_size, local_rank=world.local_rank)
    valid_channel = VALIDATION_CHANNEL if VALIDATION_CHANNEL in env.channels else TRAINING_CHANNEL
    return (
        on_host if host_local(env, TRAINING_CHANNEL) else world,
        on_host if host_local(env, valid_channel) else world,
    )


def rows(share: World, length: int) -> list[int]:
    """The rows of a table this process takes: every ``size``-th one, from its rank."""
    return list(range(share.rank, length, share.size))


def agreed_steps(length: int, batch_size: int, share: World) -> int:
    """Steps per epoch, the same on every rank (DDP needs it): the largest share's, padded."""
    steps = math.ceil(math.ceil(length / share.size) / batch_size)
    if not collectives.active():
        return steps
    value = torch.tensor([steps], dtype=torch.int64, device=collectives.collective_device())
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return int(value.item())

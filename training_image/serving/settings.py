"""What the server runs with, read once from the environment and the host at start.

Concurrency (docs/serving.md, "Concurrency"): one process holds the one model; ``slots``
requests decode and run it at once, each in a thread of its own, and torch's intra-op threads
share the cores between them so that slots x threads = cores:

- on a GPU host: 2 slots (one image is prepared on the CPU while the other runs on the GPU);
- on a CPU host: half the cores, at least 1, so two threads each (one image at these sizes
  gains little from more intra-op threads, while more images at once keep every core busy;
  not yet measured on a many-core host: docs/performance.md);
- ``SAGEMAKER_MODEL_SERVER_WORKERS`` replaces the slot count (1 to 64);
- a request waits at most ``DETRAIN_MAX_QUEUE_SECONDS`` (default 45, 0 to 60) for a slot,
  then gets 503 (SageMaker cuts an invocation at 60 s in any case).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from contract.serving import (
    BATCH_VARIABLE,
    DEFAULT_HOST,
    DEFAULT_PORT,
    DEFAULT_QUEUE_SECONDS,
    HOST_VARIABLE,
    INVOCATION_SECONDS,
    MAX_IMAGE_PIXELS,
    MAX_PAYLOAD_MB,
    PORT_VARIABLE,
    QUEUE_SECONDS_VARIABLE,
    WORKERS_VARIABLE,
)

GPU_SLOTS = 2
MAX_SLOTS = 64


class SettingsError(Exception):
    """An environment variable the server cannot use."""


@dataclass(frozen=True)
class ServeSettings:
    host: str
    port: int
    batch: bool  # in a batch transform job: /execution-parameters answers
    slots: int  # requests that run the model at once
    torch_threads: int  # intra-op threads of each
    max_payload_bytes: int
    max_pixels: int
    queue_seconds: float = DEFAULT_QUEUE_SECONDS  # the longest wait for a slot, then 503

    @property
    def max_payload_mb(self) -> int:
        return self.max_payload_bytes // 2**20


def available_cores() -> int:
    """The cores this process may run on (a container's CPU set, not the host's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def _whole_number(environ: Mapping[str, str], name: str, low: int, high: int) -> int | None:
    raw = environ.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise SettingsError(f"{name}={raw!r} is not allowed; allowed: {low} to {high}")
    return int(raw)


def _seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= INVOCATION_SECONDS:
        raise SettingsError(
            f"{name}={raw!r} is not allowed; allowed: 0 to {INVOCATION_SECONDS} (seconds)"
        )
    return seconds


def slot_count(cores: int, gpus: int) -> int:
    return GPU_SLOTS if gpus else max(1, cores // 2)


def from_environ(environ: Mapping[str, str], *, cores: int, gpus: int) -> ServeSettings:
    port = _whole_number(environ, PORT_VARIABLE, 1, 65535) or DEFAULT_PORT
    slots = _whole_number(environ, WORKERS_VARIABLE, 1, MAX_SLOTS) or slot_count(cores, gpus)
    return ServeSettings(
        host=environ.get(HOST_VARIABLE) or DEFAULT_HOST,
        port=port,
        batch=environ.get(BATCH_VARIABLE, "").strip().lower() == "true",
        slots=slots,
        torch_threads=max(1, cores // slots),
        max_payload_bytes=MAX_PAYLOAD_MB * 2**20,
        max_pixels=MAX_IMAGE_PIXELS,
        queue_seconds=_seconds(environ, QUEUE_SECONDS_VARIABLE, DEFAULT_QUEUE_SECONDS),
    )

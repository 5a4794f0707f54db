"""The trainer's two start-up lines that say which way the GPU went, written and read here.

The trainer logs them on every job (trainer/forward_compat.py, trainer/accelerator.py);
``detrain first-job`` reads them back from the job's log::

    CUDA forward compatibility: host driver 535.183.01, compat package 560.35.03: compat (...)
    Training device: cuda:0; GPU NVIDIA A10G; memory 22.3 GiB; driver 535.183.01; CUDA build 12.6

A value that is not there is spelled ``none``.
"""

from __future__ import annotations

import re

FORWARD_COMPAT_PREFIX = "CUDA forward compatibility:"
DEVICE_PREFIX = "Training device:"
NONE = "none"

_FORWARD_COMPAT = re.compile(
    re.escape(FORWARD_COMPAT_PREFIX)
    + r" host driver (?P<host>\S+), compat package (?P<compat>\S+): "
    r"(?P<verdict>[a-z ]+?) \((?P<reason>.*?)\)(?:;|\s*$)"
)
_DEVICE = re.compile(
    re.escape(DEVICE_PREFIX) + r" (?P<device>[^;]+); GPU (?P<gpu>[^;]+); memory (?P<memory>[^;]+); "
    r"driver (?P<driver>[^;]+); CUDA build (?P<cuda>\S+)\s*$"
)


def forward_compat_line(host: str | None, compat: str | None, verdict: str, reason: str) -> str:
    return (
        f"{FORWARD_COMPAT_PREFIX} host driver {host or NONE}, compat package {compat or NONE}: "
        f"{verdict} ({reason})"
    )


def device_line(
    device: str, gpu: str | None, memory_gib: float | None, driver: str | None, cuda: str | None
) -> str:
    memory = f"{memory_gib:.1f} GiB" if memory_gib is not None else NONE
    return (
        f"{DEVICE_PREFIX} {device}; GPU {gpu or NONE}; memory {memory}; driver {driver or NONE}; "
        f"CUDA build {cuda or NONE}"
    )


def parse_forward_compat(line: str) -> dict[str, str] | None:
    """host, compat, verdict, reason of a forward-compatibility line; None for other lines."""
    match = _FORWARD_COMPAT.search(line)
    return match.groupdict() if match else None


def parse_device(line: str) -> dict[str, str] | None:
    """device, gpu, memory, driver, cuda of a device line; None for other lines."""
    match = _DEVICE.search(line)
    return {k: v.strip() for k, v in match.groupdict().items()} if match else None

"""What SageMaker training instance types cost, to pick the cheapest GPU for ``detrain first-job``.

Source: https://aws.amazon.com/sagemaker/pricing/ (Training tab, on-demand, US East (N. Virginia)),
as published in 2024 and recorded here on 2026-12-06 without a fresh check (this project's
machines have no internet). Prices change and differ by region: they only order the allowed
types and give an upper bound on the first job's cost (managed spot bills less). A GPU type not
in the table is still a GPU type; it comes after the priced ones.
"""

from __future__ import annotations

from collections.abc import Iterable

PRICES_SOURCE = "aws.amazon.com/sagemaker/pricing, Training, on-demand, us-east-1 (2024)"

# USD per instance-hour.
ON_DEMAND_USD_PER_HOUR: dict[str, float] = {
    "ml.g4dn.xlarge": 0.736,
    "ml.g4dn.2xlarge": 1.053,
    "ml.g4dn.4xlarge": 1.686,
    "ml.g4dn.8xlarge": 3.045,
    "ml.g4dn.12xlarge": 5.477,
    "ml.g4dn.16xlarge": 6.093,
    "ml.g5.xlarge": 1.408,
    "ml.g5.2xlarge": 1.515,
    "ml.g5.4xlarge": 2.03,
    "ml.g5.8xlarge": 3.06,
    "ml.g5.12xlarge": 7.09,
    "ml.g5.16xlarge": 4.096,
    "ml.g5.24xlarge": 10.18,
    "ml.g5.48xlarge": 20.36,
    "ml.p3.2xlarge": 3.825,
    "ml.p3.8xlarge": 14.688,
    "ml.p3.16xlarge": 28.152,
    "ml.p4d.24xlarge": 37.688,
}

# Instance families with NVIDIA GPUs that the image's CUDA 12 build runs on (x86, Volta or later).
NVIDIA_GPU_FAMILIES = frozenset(
    {"g4dn", "g5", "g6", "g6e", "p3", "p3dn", "p4d", "p4de", "p5", "p5e", "p5en", "p6-b200"}
)
SUGGESTED_GPU_TYPES = ("ml.g4dn.xlarge", "ml.g5.xlarge")


class NoGpuTypeError(ValueError):
    """The deployment allows no GPU instance type; the message names the allowed ones."""


def family(instance_type: str) -> str:
    """``ml.g5.xlarge`` -> ``g5``."""
    return instance_type.split(".")[1] if instance_type.count(".") == 2 else ""


def is_gpu(instance_type: str) -> bool:
    return family(instance_type) in NVIDIA_GPU_FAMILIES


def cheapest_gpu_type(allowed: Iterable[str]) -> str:
    """The allowed GPU type with the lowest on-demand price (unpriced ones last, by name)."""
    allowed = tuple(allowed)
    gpus = [t for t in allowed if is_gpu(t)]
    if not gpus:
        raise NoGpuTypeError(
            "the deployment allows no GPU instance type "
            f"(allowed: {', '.join(allowed) or 'none'}); the first job proves the GPU driver "
            "path, so add one such as "
            f"{' or '.join(SUGGESTED_GPU_TYPES)} to detrain:instanceTypes in cdk.json and run "
            "`npx cdk deploy`"
        )
    return min(gpus, key=lambda t: (t not in ON_DEMAND_USD_PER_HOUR, price(t) or 0.0, t))


def price(instance_type: str) -> float | None:
    """On-demand USD per hour, or None when the table has no price for the type."""
    return ON_DEMAND_USD_PER_HOUR.get(instance_type)

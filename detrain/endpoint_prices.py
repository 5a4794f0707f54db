"""What a deployed model costs: the one price table `detrain deploy` and `detrain endpoints`
read.

Source: Amazon SageMaker AI pricing (https://aws.amazon.com/sagemaker/pricing/), on-demand,
US East (N. Virginia), "Real-Time Inference" and "Serverless Inference"; written down on
2026-12-06 from AWS's published list prices, not read from the live page (these machines have
no internet). Other regions cost more or less; savings plans less. The prices are what the
user is shown before confirming: check them in the AWS Pricing Calculator before a budget.
"""

from __future__ import annotations

PRICES_SOURCE = "aws.amazon.com/sagemaker/pricing, us-east-1 on-demand, as of 2026-12-06"
HOURS_PER_MONTH = 730  # AWS's own monthly figure (24 x 365 / 12)

# Real-time inference: USD per instance-hour, billed per second from InService to deletion,
# whether requests come or not.
REAL_TIME_USD_PER_HOUR: dict[str, float] = {
    "ml.t2.medium": 0.056,
    "ml.m5.large": 0.115,
    "ml.m5.xlarge": 0.23,
    "ml.m5.2xlarge": 0.461,
    "ml.c5.large": 0.102,
    "ml.c5.xlarge": 0.204,
    "ml.c5.2xlarge": 0.408,
    "ml.g4dn.xlarge": 0.736,
    "ml.g4dn.2xlarge": 0.94,
    "ml.g5.xlarge": 1.408,
    "ml.g5.2xlarge": 1.515,
    "ml.p3.2xlarge": 3.825,
}
# Serverless inference: USD per second of compute per GB of memory configured (1 GB: 0.00002
# USD/s), only while requests are processed, plus data processed in and out.
SERVERLESS_USD_PER_GB_SECOND = 0.00002
SERVERLESS_USD_PER_GB_PROCESSED = 0.016


def hourly_price(instance_type: str) -> float | None:
    """USD per hour of one instance, or None for a type the table does not have."""
    return REAL_TIME_USD_PER_HOUR.get(instance_type)


def real_time_cost(instance_type: str, count: int = 1) -> str:
    """`ml.g5.xlarge x 1: 1.41 USD/hour (~1,028 USD/month), idle or not`, or the unknown."""
    price = hourly_price(instance_type)
    if price is None:
        return (
            f"{instance_type} x {count}: not in detrain's price table; look it up at "
            "https://aws.amazon.com/sagemaker/pricing/ (billed per hour, idle or not)"
        )
    hourly = price * count
    return (
        f"{instance_type} x {count}: {hourly:.2f} USD/hour (~{hourly * HOURS_PER_MONTH:,.0f} "
        f"USD/month), billed from InService until `detrain undeploy`, idle or not "
        f"({PRICES_SOURCE})"
    )


def serverless_cost(memory_mb: int) -> str:
    """What a serverless endpoint costs: nothing idle, per second of work otherwise."""
    per_second = SERVERLESS_USD_PER_GB_SECOND * memory_mb / 1024
    return (
        f"serverless, {memory_mb} MB: nothing while idle; {per_second:.6f} USD per second of "
        f"inference (~{per_second * 3600:.2f} USD per busy hour) plus "
        f"{SERVERLESS_USD_PER_GB_PROCESSED} USD per GB in and out ({PRICES_SOURCE})"
    )


def cost_class(variant: dict) -> str:
    """A production variant's cost class, for `detrain endpoints`."""
    serverless = variant.get("ServerlessConfig")
    if serverless:
        return f"serverless {serverless.get('MemorySizeInMB', '?')} MB (idle: 0 USD)"
    instance_type = variant.get("InstanceType", "?")
    count = variant.get("InitialInstanceCount", variant.get("CurrentInstanceCount", 1))
    price = hourly_price(instance_type)
    hourly = f"{price * count:.2f} USD/hour" if price is not None else "price not in the table"
    return f"{count} x {instance_type} ({hourly})"

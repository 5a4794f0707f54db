"""Service Quotas answers in the service's own shape, for Stubber responses (moto has no
ListServiceQuotas): the quota codes are examples; the doctor matches quotas by name."""

from __future__ import annotations

import hashlib

from tests.support.cli_world import ACCOUNT, REGION


def quota(service: str, name: str, code: str, value: float) -> dict:
    return {
        "ServiceCode": service,
        "ServiceName": "Amazon SageMaker" if service == "sagemaker" else "AWS CodeBuild",
        "QuotaArn": f"arn:aws:servicequotas:{REGION}:{ACCOUNT}:{service}/{code}",
        "QuotaCode": code,
        "QuotaName": name,
        "Value": value,
        "Unit": "None",
        "Adjustable": True,
        "GlobalQuota": False,
        "QuotaAppliedAtLevel": "ACCOUNT",
    }


def sagemaker_quotas(values: dict[str, float]) -> list[dict]:
    """Quotas named as SageMaker names them, one code each."""
    return [
        quota(
            "sagemaker", name, f"L-{hashlib.sha256(name.encode()).hexdigest()[:8].upper()}", value
        )
        for name, value in values.items()
    ]

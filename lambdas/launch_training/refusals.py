"""AWS errors that no retry can fix -> a refusal naming the cause and the fix (pure).

SageMaker answers CreateTrainingJob with ResourceLimitExceeded when an account quota is too
low (new accounts start at 0 for many GPU types), ValidationException when the request is
one it will never accept (an instance type it has no such type for, for example), and
AccessDeniedException when the launcher's role lacks a permission. Lambda would retry each
of them twice for an S3 trigger, to the same answer; they become refusals instead. Throttling
and server errors are not refusals: Lambda's retries are what they need.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from launch_training.events import Refused

ACCESS_DENIED = ("AccessDenied", "AccessDeniedException")
QUOTAS_CONSOLE = "https://console.aws.amazon.com/servicequotas/home/services/sagemaker/quotas"
# The IAM action of each call the launcher makes, named when AWS's message does not say.
ACTIONS = {
    "CreateTrainingJob": "sagemaker:CreateTrainingJob (and iam:PassRole on the training role)",
    "DescribeTrainingJob": "sagemaker:DescribeTrainingJob",
    "CreateHyperParameterTuningJob": (
        "sagemaker:CreateHyperParameterTuningJob (and iam:PassRole on the training role)"
    ),
    "DescribeHyperParameterTuningJob": "sagemaker:DescribeHyperParameterTuningJob",
    "DescribeImages": "ecr:DescribeImages",
    "ListObjectsV2": "s3:ListBucket",
    "GetObject": "s3:GetObject",
    "Publish": "sns:Publish",
}
_LIMIT_NAME = re.compile(r"service limit '([^']+)'")
_NOT_AUTHORIZED = re.compile(r"not authorized to perform:? ([\w:*-]+)")


def training_quota_name(instance_type: str, spot: bool) -> str:
    """The Service Quotas name of SageMaker's per-type training quota."""
    return f"{instance_type} for {'spot ' if spot else ''}training job usage"


def raise_quota_fix(quota_name: str, code: str | None = None, desired: int = 1) -> str:
    """How to raise a SageMaker quota: the console page, or the CLI (with its code if known)."""
    if code:
        command = (
            "aws service-quotas request-service-quota-increase --service-code sagemaker "
            f"--quota-code {code} --desired-value {desired}"
        )
    else:
        command = (
            "aws service-quotas list-service-quotas --service-code sagemaker --query "
            f"\"Quotas[?QuotaName=='{quota_name}'].QuotaCode\" (its code), then aws "
            "service-quotas request-service-quota-increase --service-code sagemaker "
            f"--quota-code <code> --desired-value {desired}"
        )
    return f"raise it in the Service Quotas console ({QUOTAS_CONSOLE}) or with: {command}"


def refusal(
    error: ClientError, *, job: Mapping[str, Any] | None, allowed: tuple[str, ...] = ()
) -> Refused | None:
    """The refusal for an error no retry can fix; None for one a retry may fix (re-raise it).

    ``job`` is the CreateTrainingJob request when the error answers it; ``allowed`` the
    deployment's instance types.
    """
    details = error.response.get("Error", {})
    code = details.get("Code", "")
    message = details.get("Message", "") or ""
    operation = error.operation_name or "?"
    if code in ACCESS_DENIED:
        found = _NOT_AUTHORIZED.search(message)
        action = found.group(1) if found else ACTIONS.get(operation, operation)
        return Refused(
            f"{operation} was denied ({code}: {message}); the launcher's role needs {action}. "
            "The stack grants it: redeploy with `npx cdk deploy` (and check no permissions "
            "boundary or SCP in this account denies it)"
        )
    if job is not None and operation == "CreateHyperParameterTuningJob":
        return _tuning_refusal(code, message, job, allowed)
    if job is None or operation != "CreateTrainingJob":
        return None
    resources = job.get("ResourceConfig", {})
    instance_type = resources.get("InstanceType", "?")
    spot = bool(job.get("EnableManagedSpotTraining"))
    if code == "ResourceLimitExceeded":
        found = _LIMIT_NAME.search(message)
        quota = found.group(1) if found else training_quota_name(instance_type, spot)
        other = "on-demand (--no-spot)" if spot else "spot (--spot)"
        return Refused(
            f"the account's SageMaker quota {quota!r} is too low for "
            f"{resources.get('InstanceCount', 1)} x {instance_type} ({message}); "
            f"{raise_quota_fix(quota, desired=resources.get('InstanceCount', 1))}. "
            f"Meanwhile, {other} or another allowed instance type may have quota "
            "(`detrain doctor` lists them all)"
        )
    if code == "ValidationException":
        about_type = "instancetype" in message.replace(" ", "").lower()
        hint = (
            f"SageMaker has no training instance type {instance_type!r} here; this deployment "
            f"allows {', '.join(allowed) or '?'}: choose another, and fix detrain:instanceTypes "
            "in cdk.json"
            if about_type
            else "the request is one SageMaker never accepts; fix the value it names"
        )
        return Refused(f"SageMaker refused the job ({message}); {hint}")
    return None


def _tuning_refusal(
    code: str, message: str, tuning: Mapping[str, Any], allowed: tuple[str, ...]
) -> Refused | None:
    """CreateHyperParameterTuningJob's refusals: a quota (concurrent tuning jobs, parallel
    trials, the instances of the trials running at once) or a request it never accepts."""
    definition = tuning.get("TrainingJobDefinition", {})
    limits = tuning.get("HyperParameterTuningJobConfig", {}).get("ResourceLimits", {})
    parallel = limits.get("MaxParallelTrainingJobs", 1)
    resources = definition.get("ResourceConfig", {})
    instance_type = resources.get("InstanceType", "?")
    if code == "ResourceLimitExceeded":
        found = _LIMIT_NAME.search(message)
        quota = found.group(1) if found else "the SageMaker quota the message names"
        instances = parallel * resources.get("InstanceCount", 1)
        return Refused(
            f"the account's SageMaker quota {quota!r} is too low for this tuning job "
            f"({parallel} trial(s) at once on {instances} x {instance_type}; {message}); "
            f"{raise_quota_fix(quota, desired=instances if found else 1)}. Meanwhile, "
            "lower 'max_parallel_jobs' (--parallel), wait for a running tuning job to end, or "
            "choose another allowed instance type (`detrain doctor` lists their quotas)"
        )
    if code == "ValidationException":
        about_type = "instancetype" in message.replace(" ", "").lower()
        hint = (
            f"SageMaker has no training instance type {instance_type!r} here; this deployment "
            f"allows {', '.join(allowed) or '?'}"
            if about_type
            else "the request is one SageMaker never accepts; fix the value it names in the "
            "'tuning' block (docs/tuning.md lists the rules)"
        )
        return Refused(f"SageMaker refused the tuning job ({message}); {hint}")
    return None

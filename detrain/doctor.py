"""``detrain doctor``: a preflight of the AWS account, one ✓ or ✗ line per check, with the fix.

What a first deploy and a first job need, checked before either: credentials and region (STS);
the CDK bootstrap version (SSM ``/cdk-bootstrap/hnb659fds/version``) against what the
synthesized app requires; Lambda's unreserved concurrency; for every allowed instance type,
SageMaker's training quotas, on-demand and spot, and its warm-pool quota (Service Quotas,
matched by name: codes are the account's to tell); the CodeBuild concurrent-build quota of the
image build's compute type (and, as Service Quotas cannot show it, CodeBuild's hidden new-
account limit and its fix); the stack deployed, and its image tag in ECR."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from contract.names import STACK_NAME, Output
from launch_training.refusals import QUOTAS_CONSOLE, training_quota_name

BOOTSTRAP_PARAMETER = "/cdk-bootstrap/hnb659fds/version"
# What aws-cdk-lib 2.275's DefaultStackSynthesizer requires (MIN_BOOTSTRAP_STACK_VERSION),
# used when there is no cdk.out to read it from.
MIN_BOOTSTRAP_VERSION = 6
BUILD_COMPUTE = "Linux/Medium"  # infra/image_build.py: codebuild.ComputeType.MEDIUM
CODEBUILD_QUOTA = f"Concurrently running builds for {BUILD_COMPUTE} environment"
# Service Quotas does not show it: new accounts often may not start any build at all.
CODEBUILD_HIDDEN_LIMIT = (
    "Service Quotas cannot show CodeBuild's hidden limit on new accounts: if the deploy "
    "fails with 'Cannot have more than 0 builds in queue for the account', open an AWS "
    "Support case to raise the CodeBuild concurrent-build limit (or wait until AWS has "
    "validated the new account), then `npx cdk deploy` again"
)
LAMBDA_CONCURRENCY_QUOTA = ("Concurrent executions", "L-B99A9384")
LAMBDA_UNRESERVED_MINIMUM = 100  # Lambda keeps this many unreserved: reserving needs more


@dataclass(frozen=True)
class Finding:
    ok: bool
    check: str
    detail: str
    fix: str = ""

    def text(self) -> str:
        line = f"{'✓' if self.ok else '✗'} {self.check}: {self.detail}"
        return f"{line}\n    fix: {self.fix}" if self.fix and not self.ok else line


class Clients:
    """One client per service, made on first use (tests hand in stubbed ones)."""

    def __init__(self, session, **made: Any):
        self.session, self.made = session, dict(made)

    def __call__(self, service: str):
        if service not in self.made:
            self.made[service] = self.session.client(service)
        return self.made[service]


def _failed(check: str, error: Exception) -> Finding:
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code = str(details.get("Code"))
        message = " ".join(str(details.get("Message", "")).split())[:160]
        reason = f"{code}: {message}"
        fix = (
            "allow this read-only call for your AWS identity, then run `detrain doctor` again"
            if code.startswith("AccessDenied")
            else "run `detrain doctor` again; if it persists, check this in the AWS console"
        )
    else:
        reason, fix = str(error), "check your network, region and AWS_ENDPOINT_URL"
    return Finding(False, check, f"could not check ({reason})", fix)


def guarded(check: str, run: Callable[[], Finding | list[Finding]]) -> list[Finding]:
    try:
        found = run()
    except (ClientError, BotoCoreError) as error:
        return [_failed(check, error)]
    return found if isinstance(found, list) else [found]


# ---- checks -------------------------------------------------------------------------------


def credentials(aws: Clients, region: str) -> Finding:
    identity = aws("sts").get_caller_identity()
    return Finding(
        True, "credentials", f"{identity['Arn']} (account {identity['Account']}), region {region}"
    )


def required_bootstrap_version(cdk_out: Path) -> tuple[int, str]:
    """The version the synthesized app requires (cdk.out/manifest.json), else CDK's minimum."""
    try:
        manifest = json.loads((cdk_out / "manifest.json").read_text())
        versions = [
            int(artifact["properties"]["requiresBootstrapStackVersion"])
            for artifact in manifest.get("artifacts", {}).values()
            if artifact.get("type") == "aws:cloudformation:stack"
            and "requiresBootstrapStackVersion" in artifact.get("properties", {})
        ]
    except (OSError, ValueError, KeyError, TypeError):
        versions = []
    if versions:
        return max(versions), f"{cdk_out}/manifest.json"
    return MIN_BOOTSTRAP_VERSION, "aws-cdk-lib 2.275's minimum (no cdk.out: run `npx cdk synth`)"


def bootstrap(aws: Clients, account: str, region: str, cdk_out: Path) -> Finding:
    required, source = required_bootstrap_version(cdk_out)
    fix = f"npx cdk bootstrap aws://{account}/{region}"
    try:
        value = aws("ssm").get_parameter(Name=BOOTSTRAP_PARAMETER)["Parameter"]["Value"]
    except ClientError as error:
        if error.response["Error"]["Code"] != "ParameterNotFound":
            raise
        return Finding(
            False,
            "CDK bootstrap",
            f"{region} is not bootstrapped (no SSM parameter {BOOTSTRAP_PARAMETER})",
            fix,
        )
    version = int(value) if str(value).isdigit() else 0
    if version < required:
        return Finding(
            False, "CDK bootstrap", f"version {value}, the app needs {required} ({source})", fix
        )
    return Finding(True, "CDK bootstrap", f"version {version} (the app needs {required})")


def lambda_concurrency(aws: Clients) -> Finding:
    limits = aws("lambda").get_account_settings()["AccountLimit"]
    total, unreserved = limits["ConcurrentExecutions"], limits["UnreservedConcurrentExecutions"]
    name, code = LAMBDA_CONCURRENCY_QUOTA
    detail = f"{unreserved} unreserved of {total}"
    if unreserved < 1:
        return Finding(
            False,
            "Lambda concurrency",
            f"{detail}: the launcher could not run",
            f"free reserved concurrency, or raise '{name}' ({code})",
        )
    if total < LAMBDA_UNRESERVED_MINIMUM + 1:
        detail += (
            f"; a new account's limit: no function here can reserve concurrency (Lambda "
            f"keeps {LAMBDA_UNRESERVED_MINIMUM} unreserved), so deploy the launcher "
            f"without a reservation, or raise '{name}' ({code})"
        )
    return Finding(True, "Lambda concurrency", detail)


def list_quotas(aws: Clients, service: str) -> dict[str, dict]:
    """The account's quotas of a service by name: applied values first, AWS defaults for the
    rest (ListServiceQuotas leaves out quotas it has no applied value for)."""
    quotas: dict[str, dict] = {}
    client = aws("service-quotas")
    for operation in ("list_aws_default_service_quotas", "list_service_quotas"):
        for page in client.get_paginator(operation).paginate(ServiceCode=service):
            quotas.update({quota["QuotaName"]: quota for quota in page["Quotas"]})
    return quotas


def increase_command(service: str, code: str, desired: int) -> str:
    return (
        f"aws service-quotas request-service-quota-increase --service-code {service} "
        f"--quota-code {code} --desired-value {desired}"
    )


def training_quota(
    quotas: dict[str, dict], instance_type: str, spot: bool, count: int = 1
) -> Finding:
    name = training_quota_name(instance_type, spot)
    kind = "spot" if spot else "on-demand"
    check = f"SageMaker {kind} {instance_type}"
    quota = quotas.get(name)
    if quota is None:
        return Finding(
            False,
            check,
            f"no quota named '{name}' in this region: SageMaker may "
            "not offer this training instance type here",
            "choose another type in detrain:instanceTypes (cdk.json)",
        )
    value, code = quota.get("Value", 0), quota["QuotaCode"]
    if value < count:
        return Finding(
            False,
            check,
            f"quota '{name}' ({code}) is {value:g}: {count} x {instance_type} cannot start",
            f"{increase_command('sagemaker', code, count)} "
            f"(or the Service Quotas console: {QUOTAS_CONSOLE})",
        )
    return Finding(True, check, f"quota '{name}' ({code}) is {value:g}")


def warm_pool_quota_name(instance_type: str) -> str:
    """The Service Quotas name of SageMaker's per-type warm-pool quota (AWS default: 0)."""
    return f"{instance_type} for training warm pool usage"


def warm_pool_quota(quotas: dict[str, dict], instance_type: str) -> Finding:
    """A warm pool (--keep-alive) is kept only within this quota; at 0 a job still runs, and
    no pool is kept after it. So a missing or zero quota is said, not a failure."""
    name = warm_pool_quota_name(instance_type)
    check = f"SageMaker warm pool {instance_type}"
    quota = quotas.get(name)
    if quota is None:
        return Finding(True, check, f"no quota named '{name}' here: --keep-alive keeps no pool")
    value, code = quota.get("Value", 0), quota["QuotaCode"]
    if value < 1:
        return Finding(
            True,
            check,
            f"quota '{name}' ({code}) is 0: --keep-alive keeps no warm pool until it is raised "
            f"({increase_command('sagemaker', code, 1)})",
        )
    return Finding(True, check, f"quota '{name}' ({code}) is {value:g}")


def training_quotas(aws: Clients, instance_types: Iterable[str]) -> list[Finding]:
    quotas = list_quotas(aws, "sagemaker")
    found = []
    for instance_type in instance_types:
        found += [training_quota(quotas, instance_type, spot) for spot in (False, True)]
        found.append(warm_pool_quota(quotas, instance_type))
    return found


def codebuild_quota(aws: Clients) -> Finding:
    quota = list_quotas(aws, "codebuild").get(CODEBUILD_QUOTA)
    check = f"CodeBuild {BUILD_COMPUTE}"
    if quota is None:
        return Finding(
            False,
            check,
            f"no quota named '{CODEBUILD_QUOTA}' in this region",
            "check CodeBuild is offered in this region",
        )
    if quota.get("Value", 0) < 1:
        return Finding(
            False,
            check,
            f"quota '{CODEBUILD_QUOTA}' ({quota['QuotaCode']}) is "
            f"{quota.get('Value', 0):g}: the image build cannot run",
            increase_command("codebuild", quota["QuotaCode"], 1),
        )
    return Finding(
        True,
        check,
        f"quota '{CODEBUILD_QUOTA}' ({quota['QuotaCode']}) is {quota['Value']:g}; "
        f"{CODEBUILD_HIDDEN_LIMIT}",
    )


def deployed_stack(aws: Clients, stack_name: str, region: str) -> list[Finding]:
    try:
        stacks = aws("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        if "does not exist" not in error.response["Error"].get("Message", ""):
            raise
        return [
            Finding(
                False,
                "stack",
                f"{stack_name!r} is not deployed in {region}",
                "npx cdk deploy (after the checks above pass)",
            )
        ]
    stack = stacks[0]
    status = stack["StackStatus"]
    ok = status.endswith("_COMPLETE") and "ROLLBACK" not in status and "DELETE" not in status
    found = [
        Finding(
            ok,
            "stack",
            f"{stack_name} is {status}",
            "see the stack's events in the CloudFormation console, fix, deploy again",
        )
    ]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    image_uri = outputs.get(Output.IMAGE_URI)
    if image_uri:
        found.append(image(aws, image_uri))
    return found


def image(aws: Clients, uri: str) -> Finding:
    repository_part, _, tag = uri.rpartition(":")
    registry, _, repository = repository_part.partition("/")
    try:
        aws("ecr").describe_images(
            registryId=registry.split(".")[0],
            repositoryName=repository,
            imageIds=[{"imageTag": tag}],
        )
    except ClientError as error:
        code = error.response["Error"]["Code"]
        if code not in ("ImageNotFoundException", "RepositoryNotFoundException"):
            raise
        return Finding(
            False,
            "training image",
            f"{uri} is not in ECR ({code})",
            "the deploy builds it: see the image build's CodeBuild logs, then "
            "`npx cdk deploy` again",
        )
    return Finding(True, "training image", f"{uri} is in ECR")


# ---- the whole preflight ------------------------------------------------------------------


def run(
    aws: Clients,
    *,
    region: str,
    instance_types: Iterable[str],
    cdk_out: Path,
    stack_name: str = STACK_NAME,
) -> list[Finding]:
    found = guarded("credentials", lambda: credentials(aws, region))
    if not found[0].ok:
        return found
    account = aws("sts").get_caller_identity()["Account"]
    found += guarded("CDK bootstrap", lambda: bootstrap(aws, account, region, cdk_out))
    found += guarded("Lambda concurrency", lambda: lambda_concurrency(aws))
    found += guarded("SageMaker training quotas", lambda: training_quotas(aws, instance_types))
    found += guarded("CodeBuild quota", lambda: codebuild_quota(aws))
    found += guarded("stack", lambda: deployed_stack(aws, stack_name, region))
    return found


def launch_preflight(aws: Clients, instance_type: str, spot: bool, count: int) -> Finding:
    """The one quota a launch needs; a finding that could not check is ok=False too."""
    [finding] = guarded(
        "SageMaker training quotas",
        lambda: training_quota(list_quotas(aws, "sagemaker"), instance_type, spot, count),
    )
    return finding

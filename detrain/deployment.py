"""Find the deployed resources: the stack's outputs, or what the operator names explicitly."""

from __future__ import annotations

from dataclasses import dataclass

import boto3
import botocore.session
from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError, ProfileNotFound

from contract.launcher_settings import LauncherSettings, SettingsError
from contract.names import STACK_NAME, Output

NO_CREDENTIALS = (
    "no AWS credentials found; run `aws configure` (or `aws sso login`), "
    "or set AWS_PROFILE / AWS_ACCESS_KEY_ID"
)


class DeploymentError(RuntimeError):
    """No credentials, no region, or the stack is not deployed; the message says what to do."""


@dataclass(frozen=True)
class Deployment:
    bucket: str | None = None
    function_name: str | None = None


_SOURCES = {
    "bucket": (Output.BUCKET_NAME, "--bucket"),
    "function_name": (Output.FUNCTION_NAME, "--function"),
}


def session(region: str | None = None, profile: str | None = None) -> boto3.session.Session:
    """A boto3 session that has credentials and a region, or a DeploymentError saying so."""
    try:
        aws = boto3.session.Session(region_name=region, profile_name=profile)
    except ProfileNotFound as error:
        known = botocore.session.Session().available_profiles
        raise DeploymentError(
            f"AWS profile {error.kwargs['profile']!r} is not configured; "
            f"configured: {', '.join(known) or 'none (run `aws configure --profile NAME`)'}"
        ) from None
    if aws.get_credentials() is None:
        raise DeploymentError(NO_CREDENTIALS)
    if not aws.region_name:
        raise DeploymentError("no AWS region set; pass --region or set AWS_REGION")
    return aws


def stack_outputs(
    aws: boto3.session.Session, stack_name: str = STACK_NAME, *, flags: str = "--bucket ..."
) -> dict[str, str]:
    """The stack's outputs; `flags` names the options that would do without the stack."""
    try:
        stacks = aws.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    except (NoCredentialsError, NoRegionError) as error:
        raise DeploymentError(f"cannot reach AWS: {error}") from None
    except ClientError as error:
        if "does not exist" in error.response["Error"].get("Message", ""):
            raise DeploymentError(
                f"stack {stack_name!r} is not deployed in {aws.region_name}; run "
                f"`npx cdk deploy` first, pass --region, or name the resources ({flags})"
            ) from None
        raise
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def find(
    aws: boto3.session.Session,
    *,
    need: tuple[str, ...],
    stack_name: str = STACK_NAME,
    bucket: str | None = None,
    function_name: str | None = None,
) -> Deployment:
    """The resources named in `need`: explicit names win, the stack's outputs fill in the rest."""
    found = {"bucket": bucket, "function_name": function_name}
    if not all(found[field] for field in need):
        flags = ", ".join(_SOURCES[field][1] for field in need)
        outputs = stack_outputs(aws, stack_name, flags=flags)
        for field in need:
            output, flag = _SOURCES[field]
            found[field] = found[field] or outputs.get(output)
            if not found[field]:
                raise DeploymentError(f"stack {stack_name!r} has no output {output}; pass {flag}")
    return Deployment(**found)


def launcher_settings(aws: boto3.session.Session, function_name: str) -> LauncherSettings:
    """The deployed launcher's settings: its environment (Lambda GetFunctionConfiguration),
    validated as the function validates it at cold start."""
    try:
        config = aws.client("lambda").get_function_configuration(FunctionName=function_name)
    except ClientError as error:
        details = error.response["Error"]
        raise DeploymentError(
            f"cannot read the launcher {function_name!r}'s settings "
            f"({details.get('Code')}: {details.get('Message')}); lambda:GetFunctionConfiguration "
            "is needed, or pass --function"
        ) from None
    try:
        return LauncherSettings.from_environ(config.get("Environment", {}).get("Variables", {}))
    except SettingsError as error:
        raise DeploymentError(
            f"the launcher {function_name!r} has unusable settings ({error}); redeploy "
            "(`npx cdk deploy`)"
        ) from None

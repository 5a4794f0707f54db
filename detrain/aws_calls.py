"""What the commands that talk to AWS share: their options, a session, the deployed resources
and the deployed launcher's settings.

Resources come from the stack's outputs (CloudFormation DescribeStacks on ``Detrain``), or
from --bucket / --function. The launcher's allow-list is read from the deployed function's
environment (Lambda GetFunctionConfiguration), parsed by the class the function itself uses
(contract/launcher_settings.py), so it is the deployment's list whatever this checkout's
cdk.json says. Failures are not caught here: detrain/cli_error.py turns them into the
user's message, once, for every command.
"""

from __future__ import annotations

import argparse
import logging

import boto3

from contract.launcher_settings import LauncherSettings
from contract.names import STACK_NAME
from detrain import deployment, doctor


def aws_options() -> argparse.ArgumentParser:
    """--region, --profile and --stack, for every command that talks to the deployment."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--region", help="AWS region (default: your AWS configuration)")
    parent.add_argument("--profile", help="AWS profile (default: your AWS configuration)")
    parent.add_argument(
        "--stack", default=STACK_NAME, help=f"the deployed stack (default {STACK_NAME})"
    )
    return parent


def whole_number(raw: str) -> int:
    """An option's count (instances, trials, list length): a whole number of at least 1."""
    if not raw.isdecimal() or int(raw) < 1:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number of at least 1")
    return int(raw)


def session(args: argparse.Namespace) -> boto3.session.Session:
    """The command's AWS session (botocore's debug lines only with --verbose)."""
    if not args.verbose:
        for noisy in ("botocore", "boto3", "urllib3"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    return deployment.session(region=args.region, profile=args.profile)


def find_deployment(args: argparse.Namespace, aws, *need: str) -> deployment.Deployment:
    """The resources in `need`: --bucket / --function when given, else the stack's outputs."""
    return deployment.find(
        aws,
        need=need,
        stack_name=args.stack,
        bucket=getattr(args, "bucket", None),
        function_name=getattr(args, "function", None),
    )


def doctor_clients(aws) -> doctor.Clients:
    """The clients the account checks use (a test hands in stubbed ones here)."""
    return doctor.Clients(aws)


def deployed_launcher_settings(aws, function_name: str) -> LauncherSettings:
    """The deployed launcher's settings, read from its environment and validated as the
    function validates them (SettingsError when they do not parse)."""
    config = aws.client("lambda").get_function_configuration(FunctionName=function_name)
    return LauncherSettings.from_environ(config.get("Environment", {}).get("Variables", {}))

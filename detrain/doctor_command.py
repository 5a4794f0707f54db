"""``detrain doctor``: run the account checks of detrain/doctor.py and print one line each.

The instance types whose quotas it checks are the deployment's: the deployed launcher's
allow-list (its environment, read as the function reads it). Before the first deploy there
is no launcher, so they are the ones ./cdk.json will deploy (the CDK app's folder, where
``npx cdk deploy`` runs, as --cdk-out is).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from contract.launcher_settings import SettingsError
from contract.names import Output
from detrain import aws_calls, deployment, doctor

ALLOW_LIST_CHECK = "instance types"
CDK_JSON = Path("cdk.json")


def allowed_instance_types(aws, stack_name: str) -> tuple[tuple[str, ...], doctor.Finding]:
    """The instance types to check, and a finding that says where they come from."""
    found: list[str] = []

    def read() -> doctor.Finding:
        try:
            outputs = deployment.stack_outputs(aws, stack_name)
        except deployment.DeploymentError:
            return _not_deployed(found)
        function_name = outputs.get(Output.FUNCTION_NAME)
        if not function_name:
            return doctor.Finding(
                False,
                ALLOW_LIST_CHECK,
                f"stack {stack_name!r} has no output {Output.FUNCTION_NAME}",
                "npx cdk deploy (the launcher function is part of the stack)",
            )
        try:
            settings = aws_calls.deployed_launcher_settings(aws, function_name)
        except SettingsError as error:
            return doctor.Finding(
                False,
                ALLOW_LIST_CHECK,
                f"{function_name}'s environment is not the launcher's: {error}",
                "npx cdk deploy (it sets the environment from cdk.json)",
            )
        found.extend(settings.allowed_instance_types)
        return doctor.Finding(
            True, ALLOW_LIST_CHECK, f"{', '.join(found)} (the deployed launcher {function_name})"
        )

    [finding] = doctor.guarded(ALLOW_LIST_CHECK, read)
    return tuple(found), finding


def _not_deployed(found: list[str]) -> doctor.Finding:
    from infra.settings import SettingsError as CdkSettingsError
    from infra.settings import from_context, load_context

    if not CDK_JSON.is_file():
        return doctor.Finding(
            False,
            ALLOW_LIST_CHECK,
            f"the stack is not deployed, and there is no {CDK_JSON} here to read them from",
            "run `detrain doctor` in the CDK app's folder (where cdk.json is), or deploy first",
        )
    try:
        found.extend(from_context(load_context(CDK_JSON)).instance_types)
    except CdkSettingsError as error:
        return doctor.Finding(False, ALLOW_LIST_CHECK, str(error), f"fix {CDK_JSON}")
    return doctor.Finding(
        True, ALLOW_LIST_CHECK, f"{', '.join(found)} (./{CDK_JSON}: the stack is not deployed yet)"
    )


def _doctor(args: argparse.Namespace) -> int:
    aws = aws_calls.session(args)
    clients = aws_calls.doctor_clients(aws)
    instance_types, source = allowed_instance_types(aws, args.stack)
    findings = doctor.run(
        clients,
        region=aws.region_name,
        instance_types=instance_types,
        cdk_out=args.cdk_out,
        stack_name=args.stack,
    )
    if findings[0].ok:  # the credentials work: say which instance types the quotas are for
        findings.insert(1, source)
    for finding in findings:
        print(finding.text())
    problems = sum(not f.ok for f in findings)
    print(f"{problems} problem{'s' if problems != 1 else ''} found" if problems else "all good")
    return 1 if problems else 0


def register(subcommands: argparse._SubParsersAction) -> None:
    cmd = subcommands.add_parser(
        "doctor",
        parents=[aws_calls.aws_options()],
        help="check the AWS account before a deploy or a launch, with the fix for each finding",
        description="Credentials and region, the CDK bootstrap version, Lambda concurrency, "
        "SageMaker training quotas (on-demand and spot) for every instance type the deployed "
        "launcher allows (before a deploy: ./cdk.json's), the CodeBuild build quota, the "
        "deployed stack and its image. Exit status 1 on a finding.",
    )
    cmd.add_argument(
        "--cdk-out",
        type=Path,
        default=Path("cdk.out"),
        help="the synthesized app, for the bootstrap version it needs (default ./cdk.out)",
    )
    cmd.set_defaults(func=_doctor)

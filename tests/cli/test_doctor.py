"""`detrain doctor` and the quota check of `detrain launch`.

STS, SSM, CloudFormation and ECR are the moto server's. moto has no Lambda GetAccountSettings
and no Service Quotas ListServiceQuotas: those answers are botocore Stubber responses, which
the real service models validate (the quota codes in them are examples; the doctor matches
quotas by name and prints the code the account answers).
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import replace

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.response import StreamingBody
from botocore.stub import Stubber

from contract.names import STACK_NAME
from detrain import aws_calls, cli, doctor, doctor_command, job_commands
from tests.support.cli_world import ACCOUNT, IMAGE_URI, LAUNCHER, REGION, deploy_launcher
from tests.support.service_quotas import quota, sagemaker_quotas

INSTANCE_TYPES = LAUNCHER.allowed_instance_types  # the deployed launcher's list
NEW_ACCOUNT_LIMITS = {
    "AccountLimit": {
        "TotalCodeSize": 80530636800,
        "CodeSizeUnzipped": 262144000,
        "CodeSizeZipped": 52428800,
        "ConcurrentExecutions": 10,
        "UnreservedConcurrentExecutions": 10,
    },
    "AccountUsage": {"TotalCodeSize": 0, "FunctionCount": 0},
}


DEFAULTS = {  # a new account: every GPU training quota at 0
    f"{t} for {kind}training job usage": 0.0 for t in INSTANCE_TYPES for kind in ("", "spot ")
}
APPLIED = {"ml.g5.xlarge for spot training job usage": 1.0}  # one increase granted
CODEBUILD = [quota("codebuild", doctor.CODEBUILD_QUOTA, "L-2DC20C30", 1.0)]


def quotas_stub(client, sagemaker_applied=APPLIED, codebuild=True) -> Stubber:
    stubber = Stubber(client)
    service = {"ServiceCode": "sagemaker"}
    stubber.add_response(
        "list_aws_default_service_quotas", {"Quotas": sagemaker_quotas(DEFAULTS)}, service
    )
    stubber.add_response(
        "list_service_quotas", {"Quotas": sagemaker_quotas(sagemaker_applied)}, service
    )
    if codebuild:
        stubber.add_response(
            "list_aws_default_service_quotas", {"Quotas": CODEBUILD}, {"ServiceCode": "codebuild"}
        )
        stubber.add_response("list_service_quotas", {"Quotas": []}, {"ServiceCode": "codebuild"})
    return stubber


@pytest.fixture
def clients(aws):
    """The doctor's clients: moto's, and stubbed Lambda and Service Quotas ones."""
    session = boto3.session.Session()
    made = {name: session.client(name) for name in ("lambda", "service-quotas")}
    lambda_stub = Stubber(made["lambda"])
    lambda_stub.add_response("get_account_settings", NEW_ACCOUNT_LIMITS, {})
    with lambda_stub, quotas_stub(made["service-quotas"]):
        yield doctor.Clients(session, **made)


def bootstrapped(version: str = "29") -> None:
    boto3.client("ssm").put_parameter(Name=doctor.BOOTSTRAP_PARAMETER, Value=version, Type="String")


def texts(findings) -> str:
    return "\n".join(f.text() for f in findings)


def test_a_new_account_gets_a_check_and_a_fix_for_each_finding(stack, clients, tmp_path):
    bootstrapped()

    findings = doctor.run(
        clients, region=REGION, instance_types=INSTANCE_TYPES, cdk_out=tmp_path / "none"
    )
    report = texts(findings)

    assert f"✓ credentials: arn:aws:sts::{ACCOUNT}:user/moto (account {ACCOUNT})" in report
    assert "✓ CDK bootstrap: version 29 (the app needs 6)" in report
    assert "✓ Lambda concurrency: 10 unreserved of 10; a new account's limit" in report
    assert "✓ SageMaker spot ml.g5.xlarge: quota 'ml.g5.xlarge for spot training job usage'" in (
        report
    )
    on_demand = next(f for f in findings if f.check == "SageMaker on-demand ml.g5.xlarge")
    assert not on_demand.ok
    assert "quota 'ml.g5.xlarge for training job usage' (L-" in on_demand.detail
    assert "is 0: 1 x ml.g5.xlarge cannot start" in on_demand.detail
    assert on_demand.fix.startswith(
        "aws service-quotas request-service-quota-increase --service-code sagemaker --quota-code L-"
    )
    assert on_demand.fix.endswith(
        "console.aws.amazon.com/servicequotas/home/services/sagemaker/quotas)"
    )
    assert sum(not f.ok for f in findings if f.check.startswith("SageMaker")) == 3
    assert "✓ CodeBuild Linux/Medium: quota 'Concurrently running builds for Linux/Medium" in report
    codebuild = next(f for f in findings if f.check == "CodeBuild Linux/Medium")
    # Service Quotas may say 1 while StartBuild refuses every build: the ✓ says so, and the fix
    assert "cannot show CodeBuild's hidden limit" in codebuild.detail
    assert "Cannot have more than 0 builds in queue for the account" in codebuild.detail
    assert "AWS Support case" in codebuild.detail
    assert f"✓ stack: {STACK_NAME} is CREATE_COMPLETE" in report
    assert f"✓ training image: {IMAGE_URI} is in ECR" in report


def test_no_bootstrap_no_stack_and_a_missing_image_are_named_with_their_fix(aws, clients, tmp_path):
    findings = doctor.run(
        clients, region=REGION, instance_types=INSTANCE_TYPES, cdk_out=tmp_path / "none"
    )
    report = texts(findings)

    assert f"✗ CDK bootstrap: {REGION} is not bootstrapped" in report
    assert f"fix: npx cdk bootstrap aws://{ACCOUNT}/{REGION}" in report
    assert f"✗ stack: '{STACK_NAME}' is not deployed in {REGION}" in report
    assert doctor.image(clients, IMAGE_URI.replace(":v1", ":v9")).fix.startswith(
        "the deploy builds it"
    )


def test_the_bootstrap_version_the_synthesized_app_requires_is_read_from_cdk_out(tmp_path):
    manifest = {
        "version": "48.0.0",
        "artifacts": {
            "Detrain": {
                "type": "aws:cloudformation:stack",
                "environment": "aws://unknown-account/unknown-region",
                "properties": {
                    "templateFile": "Detrain.template.json",
                    "requiresBootstrapStackVersion": 6,
                },
            },
            "Tree": {"type": "cdk:tree", "properties": {"file": "tree.json"}},
        },
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))

    assert doctor.required_bootstrap_version(tmp_path)[0] == 6
    assert doctor.required_bootstrap_version(tmp_path / "absent") == (
        doctor.MIN_BOOTSTRAP_VERSION,
        "aws-cdk-lib 2.275's minimum (no cdk.out: run `npx cdk synth`)",
    )


def test_an_old_bootstrap_is_a_finding(aws, clients, tmp_path):
    bootstrapped("4")

    finding = doctor.bootstrap(clients, ACCOUNT, REGION, tmp_path)

    assert not finding.ok
    assert finding.detail.startswith("version 4, the app needs 6")


def test_an_instance_type_without_a_quota_is_named():
    finding = doctor.training_quota({}, "ml.g5.3xlarge", spot=False)

    assert not finding.ok
    assert "no quota named 'ml.g5.3xlarge for training job usage'" in finding.detail


def test_a_denied_call_is_a_finding_not_a_crash(aws):
    session = boto3.session.Session()
    quotas = session.client("service-quotas")
    with Stubber(quotas) as stub:
        stub.add_client_error(
            "list_aws_default_service_quotas",
            service_error_code="AccessDeniedException",
            service_message="User: arn:aws:iam::123456789012:user/ops is not authorized to "
            "perform: servicequotas:ListAWSDefaultServiceQuotas",
        )
        [finding] = doctor.guarded(
            "SageMaker training quotas",
            lambda: doctor.training_quotas(
                doctor.Clients(session, **{"service-quotas": quotas}), ["ml.g5.xlarge"]
            ),
        )

    assert not finding.ok and "could not check (AccessDeniedException" in finding.detail
    assert finding.fix.startswith("allow this read-only call")


def test_the_doctor_command_prints_each_line_and_exits_1_on_a_finding(
    stack, clients, monkeypatch, capsys, tmp_path
):
    """cdk.json allows six types; the deployed launcher two: the quotas checked are those two,
    wherever the command runs (here: a folder without cdk.json)."""
    bootstrapped()
    deploy_launcher()
    monkeypatch.setattr(aws_calls, "doctor_clients", lambda aws: clients)
    monkeypatch.chdir(tmp_path)

    status = cli.main(["doctor", "--cdk-out", str(tmp_path)])

    out = capsys.readouterr().out
    lines = out.splitlines()
    assert status == 1
    assert lines[0].startswith("✓ credentials: ")
    assert lines[1] == "✓ instance types: ml.g5.xlarge, ml.g5.2xlarge (the deployed launcher " + (
        "detrain-launcher)"
    )
    assert "✗ SageMaker on-demand ml.g5.xlarge" in out
    checked = re.findall(r"SageMaker (?:on-demand|spot) (\S+):", out)
    assert sorted(set(checked)) == sorted(INSTANCE_TYPES) and len(checked) == 4
    assert "    fix: aws service-quotas request-service-quota-increase" in out
    assert out.rstrip().endswith("3 problems found")


def test_before_a_deploy_the_doctor_checks_the_types_cdk_json_will_deploy(
    aws, monkeypatch, tmp_path
):
    session = boto3.session.Session()
    monkeypatch.chdir(tmp_path)

    types, nowhere = doctor_command.allowed_instance_types(session, STACK_NAME)
    (tmp_path / "cdk.json").write_text(
        json.dumps(
            {
                "context": {
                    "detrain:instanceTypes": ["ml.g6.xlarge"],
                    "detrain:defaultInstanceType": "ml.g6.xlarge",
                    "detrain:removalPolicy": "destroy",
                }
            }
        )
    )
    from_cdk_json = doctor_command.allowed_instance_types(session, STACK_NAME)

    assert (types, nowhere.ok) == ((), False)
    assert "there is no cdk.json here" in nowhere.detail
    assert nowhere.fix.startswith("run `detrain doctor` in the CDK app's folder")
    assert from_cdk_json[0] == ("ml.g6.xlarge",)
    assert from_cdk_json[1].text() == (
        "✓ instance types: ml.g6.xlarge (./cdk.json: the stack is not deployed yet)"
    )


def test_a_launcher_without_its_environment_is_a_finding(stack):
    deploy_launcher(replace(LAUNCHER, allowed_instance_types=()))

    types, finding = doctor_command.allowed_instance_types(boto3.session.Session(), STACK_NAME)

    assert (types, finding.ok) == ((), False)
    assert (
        "detrain-launcher's environment is not the launcher's: environment variable "
        + ("ALLOWED_INSTANCE_TYPES is not set")
        in finding.detail
    )


# ---- detrain launch runs the quota check first --------------------------------------------


@pytest.fixture
def launcher_function(stack):
    deploy_launcher()


@pytest.fixture
def stubbed_quotas(monkeypatch):
    session = boto3.session.Session()
    quotas = session.client("service-quotas")
    stubber = quotas_stub(quotas, codebuild=False)
    monkeypatch.setattr(
        aws_calls,
        "doctor_clients",
        lambda aws: doctor.Clients(aws, **{"service-quotas": quotas}),
    )
    with stubber:
        yield stubber


def test_launch_refuses_on_demand_without_quota_before_invoking(
    launcher_function, stubbed_quotas, capsys
):
    status = cli.main(["launch", "fridge", "--no-spot"])

    err = capsys.readouterr().err
    assert status == 2
    assert "refused before launching:" in err
    assert "✗ SageMaker on-demand ml.g5.xlarge: quota 'ml.g5.xlarge for training job usage'" in err
    assert "fix: aws service-quotas request-service-quota-increase --service-code sagemaker" in err


def test_launch_on_spot_passes_the_check_and_sends_a_client_token(
    launcher_function, stubbed_quotas, monkeypatch
):
    """Spot (the deployment's default) has quota: the request goes to the function, with a
    fresh client token, so a retried invoke starts no second job."""
    sent = []
    monkeypatch.setattr(
        job_commands, "print_launch_result", lambda payload, error: sent.append(error) or 0
    )
    # moto cannot run a Lambda here (no Docker): botocore's before-call event answers the
    # Invoke after botocore has validated and serialized the request as it would send it.
    session = aws_calls.session

    def answer_invoke(params, **_):
        sent.append(json.loads(params["body"]))
        return AWSResponse("https://lambda.invalid", 200, {}, None), {
            "StatusCode": 200,
            "Payload": StreamingBody(io.BytesIO(b"{}"), 2),
        }

    def session_answering_invoke(args):
        aws = session(args)
        aws.events.register("before-call.lambda.Invoke", answer_invoke)
        return aws

    monkeypatch.setattr(aws_calls, "session", session_answering_invoke)

    assert cli.main(["launch", "fridge"]) == 0
    request = sent[0]
    assert request["dataset"] == "fridge"
    assert len(request["client_token"]) == 32


def test_launch_checks_the_quota_of_the_deployed_default_type_not_cdk_json_s(
    stack, stubbed_quotas, capsys
):
    deploy_launcher(
        replace(
            LAUNCHER,
            allowed_instance_types=("ml.g5.xlarge", "ml.g5.2xlarge"),
            default_instance_type="ml.g5.2xlarge",  # cdk.json's default: ml.g5.xlarge
        )
    )

    status = cli.main(["launch", "fridge", "--no-spot"])

    assert status == 2
    assert "✗ SageMaker on-demand ml.g5.2xlarge: quota 'ml.g5.2xlarge for training" in (
        capsys.readouterr().err
    )

"""AWS's refusals of the serving calls become one line naming the fix (cli_error, via
detrain/endpoint_refusals.py), in AWS's real error shapes from botocore's Stubber; and every
request deploy and transform build is one SageMaker's service model accepts."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from botocore.validate import ParamValidator

from detrain import aws_calls, cli
from detrain import endpoint_requests as requests
from detrain.cli_error import user_message
from tests.support.serving_world import JOB, MODEL_DATA, MODEL_ROLE

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/detrain-training:v1"
TAGS = requests.tags(JOB, JOB)
SERVERLESS = requests.Serving()
REAL_TIME = requests.Serving(instance_type="ml.g5.xlarge")
ARN_HEAD = "arn:aws:sagemaker:us-east-1:123456789012"


def _requests() -> dict[str, dict]:
    return {
        "CreateModel": requests.model_request(
            JOB, image=IMAGE, model_data_url=MODEL_DATA, role_arn=MODEL_ROLE, tags=TAGS
        ),
        "CreateEndpointConfig": requests.endpoint_config_request(
            JOB, model_name=JOB, serving=SERVERLESS, tags=TAGS
        ),
        "CreateEndpoint": requests.endpoint_request(JOB, config_name=JOB, tags=TAGS),
        "CreateTransformJob": requests.transform_request(
            requests.resource_name(JOB, suffix="-20261206-101010"),
            model_name=requests.resource_name(JOB, suffix="-batch"),
            input_uri="s3://b/datasets/fridge/images/",
            output_uri="s3://b/models/x/transform/y/",
            instance_type="ml.m5.xlarge",
            tags=requests.tags(JOB),
        ),
    }


@pytest.mark.parametrize("operation", list(_requests()))
def test_each_request_is_valid_by_sagemakers_service_model(operation):
    model = boto3.session.Session(region_name="us-east-1").client("sagemaker").meta.service_model
    shape = model.operation_model(operation).input_shape

    report = ParamValidator().validate(_requests()[operation], shape)

    assert not report.has_errors(), report.generate_report()


def test_a_real_time_variant_is_valid_too():
    model = boto3.session.Session(region_name="us-east-1").client("sagemaker").meta.service_model
    request = requests.endpoint_config_request(JOB, model_name=JOB, serving=REAL_TIME, tags=TAGS)

    shape = model.operation_model("CreateEndpointConfig").input_shape
    assert not ParamValidator().validate(request, shape).has_errors()
    assert request["ProductionVariants"][0]["InstanceType"] == "ml.g5.xlarge"


def test_a_long_job_name_still_gives_valid_unique_names():
    long_job = "detrain-" + "a" * 55
    names = {requests.resource_name(long_job, suffix=s) for s in ("", "-batch", "-20261206-1")}

    assert len(names) == 3
    assert all(len(n) <= 63 and requests.JOB_NAME_PATTERN.fullmatch(n) for n in names)
    assert requests.resource_name(long_job, suffix="-batch") == requests.resource_name(
        long_job, suffix="-batch"
    )


def _refused(operation: str, code: str, message: str) -> ClientError:
    """The ClientError botocore raises for AWS's answer (code, message) to `operation`."""
    service = "sagemaker-runtime" if operation == "InvokeEndpoint" else "sagemaker"
    client = boto3.session.Session(region_name="us-east-1").client(
        service, aws_access_key_id="x", aws_secret_access_key="x"
    )
    method = {
        "CreateEndpoint": "create_endpoint",
        "CreateModel": "create_model",
        "CreateTransformJob": "create_transform_job",
        "InvokeEndpoint": "invoke_endpoint",
    }[operation]
    params = (
        {"EndpointName": JOB, "Body": b"x"}
        if operation == "InvokeEndpoint"
        else _requests()[operation]
    )
    with Stubber(client) as stub:
        stub.add_client_error(
            method, service_error_code=code, service_message=message, http_status_code=400
        )
        with pytest.raises(ClientError) as raised:
            getattr(client, method)(**params)
    return raised.value


QUOTA = (
    "The account-level service limit 'ml.g5.xlarge for endpoint usage' is 0 Instances, with "
    "current utilization of 0 Instances and a request delta of 1 Instances. Please use AWS "
    "Service Quotas to request an increase for this quota."
)


@pytest.mark.parametrize(
    ("operation", "code", "message", "fix"),
    [
        (
            "CreateEndpoint",
            "ResourceLimitExceeded",
            QUOTA,
            "raise it in the Service Quotas console",
        ),
        ("CreateEndpoint", "ResourceLimitExceeded", QUOTA, "or deploy serverless"),
        (
            "CreateTransformJob",
            "ResourceLimitExceeded",
            "The account-level service limit 'ml.m5.xlarge for transform job usage' is 0 "
            "Instances, with current utilization of 0 Instances and a request delta of 1 "
            "Instances.",
            "--quota-code <code> --desired-value 1; or pass another allowed --instance-type",
        ),
        (
            "CreateEndpoint",
            "ValidationException",
            "Image size 13279248421 is greater than supported size 10737418240",
            "deploy on an instance with --instance-type",
        ),
        (
            "CreateModel",
            "ValidationException",
            f"Could not assume role {MODEL_ROLE}. Please ensure that the role exists and allows "
            "principal 'sagemaker.amazonaws.com' to assume the role.",
            "redeploy the stack (`npx cdk deploy`) so ModelRoleArn exists",
        ),
        (
            "CreateModel",
            "AccessDeniedException",
            "User: arn:aws:iam::123456789012:user/ops is not authorized to perform: "
            f"iam:PassRole on resource: {MODEL_ROLE}",
            "your AWS identity needs iam:PassRole: ask your AWS administrator",
        ),
        (
            "InvokeEndpoint",
            "ModelError",
            'Received client error (415) from primary with message "{"error": "content type '
            "'text/plain' is not read\"}\".",
            "the model server refused the request",
        ),
        (
            "InvokeEndpoint",
            "ValidationException",
            f"Endpoint {JOB} of account 123456789012 not found.",
            "`detrain endpoints` lists them",
        ),
    ],
)
def test_a_refusal_names_the_fix(operation, code, message, fix):
    error = _refused(operation, code, message)

    text = user_message(error)

    assert text.startswith(f"{code}: {message.split()[0]}")
    assert fix in text


def test_a_quota_refusal_reaches_the_user_once_through_cli_main(aws, monkeypatch, capsys):
    from tests.support.serving_world import completed_job, deploy_serving_stack

    deploy_serving_stack()
    completed_job()
    real = boto3.client("sagemaker")
    stubbed = boto3.client("sagemaker")

    class _Session:
        region_name = "us-east-1"

        def client(self, service, **_):
            return stubbed if service == "sagemaker" else boto3.client(service)

    monkeypatch.setattr(aws_calls, "session", lambda args: _Session())
    described = real.describe_training_job(TrainingJobName=JOB)
    with Stubber(stubbed) as stub:
        stub.add_response("describe_training_job", described)
        stub.add_client_error(
            "describe_model", "ValidationException", "Could not find model", http_status_code=400
        )
        stub.add_response("create_model", {"ModelArn": f"{ARN_HEAD}:model/{JOB}"})
        stub.add_client_error(
            "describe_endpoint_config",
            "ValidationException",
            "Could not find endpoint configuration",
            http_status_code=400,
        )
        stub.add_response(
            "create_endpoint_config",
            {"EndpointConfigArn": f"{ARN_HEAD}:endpoint-config/{JOB}"},
        )
        stub.add_client_error("describe_endpoint", "ValidationException", "Could not find endpoint")
        stub.add_client_error(
            "create_endpoint", "ResourceLimitExceeded", QUOTA, http_status_code=400
        )

        assert cli.main(["deploy", JOB, "--instance-type", "ml.g4dn.xlarge", "--yes"]) == 2

    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"detrain deploy: ResourceLimitExceeded: {QUOTA}; raise it in the")

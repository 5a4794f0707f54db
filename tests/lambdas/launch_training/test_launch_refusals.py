"""Errors no retry can fix become refusals; the rest still raise (for Lambda's retries).

moto accepts every CreateTrainingJob, so SageMaker's answers are injected with botocore's
Stubber on the handler's own clients: the request is still validated against SageMaker's
service model, and the error is AWS's (code, HTTP status, message as SageMaker writes it).
S3 and SNS stay the moto server's: a refused upload's notification is read back from an SQS
queue subscribed to the topic.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from types import SimpleNamespace

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber

from launch_training import handler as handler_module
from launch_training.handler import handler
from tests.support.launcher_world import ACCOUNT, BUCKET, ENVIRONMENT, REGION, payload, sample_event

NOT_FOUND = ("ValidationException", "Requested resource not found.", 400)
SPOT_LIMIT = (
    "ResourceLimitExceeded",
    "The account-level service limit 'ml.g5.xlarge for spot training job usage' is 0 Instances, "
    "with current utilization of 0 Instances and a request delta of 1 Instances. Please use AWS "
    "Service Quotas to request an increase for this quota. If AWS Service Quotas is not "
    "available, contact AWS support to request an increase for this quota.",
    400,
)
NO_SUCH_TYPE = (
    "ValidationException",
    "1 validation error detected: Value 'ml.g5.3xlarge' at 'resourceConfig.instanceType' failed "
    "to satisfy constraint: Member must satisfy enum value set: [ml.p4d.24xlarge, ml.g5.xlarge, "
    "ml.g5.2xlarge, ml.g5.4xlarge, ml.g5.8xlarge, ml.g5.12xlarge, ml.g5.16xlarge]",
    400,
)
PASS_ROLE_DENIED = (
    "AccessDeniedException",
    f"User: arn:aws:sts::{ACCOUNT}:assumed-role/Detrain-LauncherServiceRole/Detrain-Launcher is "
    f"not authorized to perform: iam:PassRole on resource: arn:aws:iam::{ACCOUNT}:role/"
    "detrain-training because no identity-based policy allows the iam:PassRole action",
    400,
)
THROTTLED = ("ThrottlingException", "Rate exceeded", 400)
INTERNAL = ("InternalFailure", "An internal error occurred.", 500)
IN_USE = (
    "ResourceInUse",
    "Training job names must be unique within an AWS account and region, and a training job "
    "with this name already exists",
    400,
)


@pytest.fixture
def clients(deployed):
    """The clients the handler uses (one set per warm container), as the handler makes them."""
    return handler_module._clients(REGION, os.environ["AWS_ENDPOINT_URL"])


@pytest.fixture
def sagemaker(clients) -> Iterator[Stubber]:
    with Stubber(clients.sagemaker) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def notifications(deployed) -> str:
    """The notifications topic in moto, with an SQS queue subscribed to it; the queue's URL."""
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic = sns.create_topic(Name=ENVIRONMENT["NOTIFICATIONS_TOPIC_ARN"].rsplit(":", 1)[1])
    assert topic["TopicArn"] == ENVIRONMENT["NOTIFICATIONS_TOPIC_ARN"]
    queue_url = sqs.create_queue(QueueName="notified")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    sns.subscribe(TopicArn=topic["TopicArn"], Protocol="sqs", Endpoint=queue_arn)
    return queue_url


def notified(queue_url: str) -> list[dict]:
    messages = boto3.client("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


def stub_error(stubber: Stubber, method: str, error: tuple[str, str, int]) -> None:
    code, message, status = error
    stubber.add_client_error(
        method, service_error_code=code, service_message=message, http_status_code=status
    )


def create_fails_with(stubber: Stubber, error: tuple[str, str, int]) -> None:
    stub_error(stubber, "describe_training_job", NOT_FOUND)
    stub_error(stubber, "create_training_job", error)


def upload_trigger_event() -> dict:
    return sample_event("s3-put-trigger.json")  # datasets/fridge v2/_launch.json


# ---- console requests: the refusal is the answer ------------------------------------------


def test_a_quota_of_zero_is_refused_naming_the_quota_and_how_to_raise_it(deployed, sagemaker):
    deployed.put_dataset("fridge", trigger=None)
    create_fails_with(sagemaker, SPOT_LIMIT)

    result = handler({"dataset": "fridge"}, None)

    assert result["status"] == "refused"
    reason = result["reason"]
    assert "quota 'ml.g5.xlarge for spot training job usage' is too low" in reason
    assert "1 x ml.g5.xlarge" in reason
    assert "request-service-quota-increase --service-code sagemaker" in reason
    assert "console.aws.amazon.com/servicequotas" in reason
    assert "on-demand (--no-spot)" in reason


def test_an_instance_type_sagemaker_lacks_is_refused_with_the_allowed_ones(
    deployed, sagemaker, monkeypatch
):
    monkeypatch.setenv("ALLOWED_INSTANCE_TYPES", "ml.g5.xlarge,ml.g5.3xlarge")
    deployed.put_dataset("fridge", trigger=None)
    create_fails_with(sagemaker, NO_SUCH_TYPE)

    result = handler({"dataset": "fridge", "instance_type": "ml.g5.3xlarge"}, None)

    assert result["status"] == "refused"
    assert "no training instance type 'ml.g5.3xlarge'" in result["reason"]
    assert "allows ml.g5.xlarge, ml.g5.3xlarge" in result["reason"]
    assert "detrain:instanceTypes in cdk.json" in result["reason"]


def test_a_missing_permission_is_refused_naming_it(deployed, sagemaker):
    deployed.put_dataset("fridge", trigger=None)
    create_fails_with(sagemaker, PASS_ROLE_DENIED)

    result = handler({"dataset": "fridge"}, None)

    assert result["status"] == "refused"
    assert "CreateTrainingJob was denied" in result["reason"]
    assert "the launcher's role needs iam:PassRole" in result["reason"]
    assert "npx cdk deploy" in result["reason"]


def test_a_denied_image_check_is_refused_before_any_create(deployed, clients, sagemaker):
    deployed.put_dataset("fridge", trigger=None)
    stub_error(sagemaker, "describe_training_job", NOT_FOUND)
    with Stubber(clients.ecr) as ecr:
        ecr.add_client_error(
            "describe_images",
            service_error_code="AccessDeniedException",
            service_message=f"User: arn:aws:sts::{ACCOUNT}:assumed-role/Detrain-Launcher/x is "
            "not authorized to perform: ecr:DescribeImages on resource: "
            f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/detrain-training",
            http_status_code=400,
        )
        result = handler({"dataset": "fridge"}, None)

    assert result["status"] == "refused"
    assert "DescribeImages was denied" in result["reason"]
    assert "needs ecr:DescribeImages" in result["reason"]


@pytest.mark.parametrize("error", [THROTTLED, INTERNAL], ids=["throttled", "5xx"])
def test_throttling_and_server_errors_still_raise_for_lambdas_retries(deployed, sagemaker, error):
    deployed.put_dataset("fridge", trigger=None)
    create_fails_with(sagemaker, error)

    with pytest.raises(ClientError, match=error[0]):
        handler({"dataset": "fridge"}, None)


def test_the_request_sagemaker_gets_passes_its_service_model(deployed, sagemaker):
    """The Stubber validates the request against SageMaker's model: KMS key, isolation, env."""
    deployed.put_dataset("fridge", trigger=None)
    stub_error(sagemaker, "describe_training_job", NOT_FOUND)
    arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/x"
    expected = {
        "TrainingJobName": ANY,
        "RoleArn": ANY,
        "AlgorithmSpecification": ANY,
        "HyperParameters": ANY,
        "InputDataConfig": ANY,
        "OutputDataConfig": {
            "S3OutputPath": f"s3://{BUCKET}/models/",
            "KmsKeyId": ENVIRONMENT["OUTPUT_KMS_KEY_ARN"],
        },
        "ResourceConfig": ANY,
        "StoppingCondition": {"MaxRuntimeInSeconds": 43200, "MaxWaitTimeInSeconds": 86400},
        "EnableManagedSpotTraining": True,
        "CheckpointConfig": ANY,
        "EnableNetworkIsolation": True,
        "EnableInterContainerTrafficEncryption": True,
        "Environment": {"DETRAIN_MAX_RUNTIME_SECONDS": "43200"},
        "Tags": ANY,
    }
    sagemaker.add_response("create_training_job", {"TrainingJobArn": arn}, expected)

    result = handler({"dataset": "fridge"}, None)

    assert (result["status"], result["job_arn"]) == ("launched", arn)


def test_resource_in_use_from_aws_answers_already_launched(deployed, sagemaker):
    """A retry racing its first try: the name is taken between the describe and the create."""
    deployed.put_dataset("fridge", trigger=None)
    create_fails_with(sagemaker, IN_USE)
    sagemaker.add_response(
        "describe_training_job",
        {
            "TrainingJobName": "taken",
            "TrainingJobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/taken",
            "ModelArtifacts": {"S3ModelArtifacts": ""},
            "TrainingJobStatus": "InProgress",
            "SecondaryStatus": "Starting",
            "AlgorithmSpecification": {"TrainingInputMode": "File"},
            "InputDataConfig": [
                {
                    "ChannelName": "training",
                    "DataSource": {
                        "S3DataSource": {
                            "S3DataType": "S3Prefix",
                            "S3Uri": f"s3://{BUCKET}/datasets/fridge/",
                        }
                    },
                }
            ],
            "ResourceConfig": {"VolumeSizeInGB": 50},
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
            "CreationTime": datetime(2025, 6, 2, tzinfo=UTC),
        },
    )

    context = SimpleNamespace(aws_request_id="8f5bd5e8-1c87-4c14-a2b0-5b4c0f0e0c11")
    result = handler({"dataset": "fridge"}, context)

    assert (result["status"], result["job_status"]) == ("already_launched", "InProgress")


# ---- S3 triggers: logged, published, and the invocation succeeds -------------------------


def test_an_uploads_refusal_is_published_and_not_retried(
    deployed, sagemaker, notifications, caplog
):
    deployed.put_dataset("fridge v2")
    create_fails_with(sagemaker, SPOT_LIMIT)

    response = handler(upload_trigger_event(), None)  # returns: Lambda does not retry

    [result] = response["results"]
    assert result["status"] == "refused"
    [message] = notified(notifications)
    assert message["Subject"] == "detrain: a training launch was refused"
    assert f"s3://{BUCKET}/datasets/fridge v2/_launch.json" in message["Message"]
    assert "'ml.g5.xlarge for spot training job usage'" in message["Message"]
    assert any("refused" in r.getMessage() for r in caplog.records)


def test_an_unreadable_trigger_is_refused_published_naming_the_permission(
    deployed, clients, notifications
):
    deployed.put_dataset("fridge v2")
    with Stubber(clients.s3) as s3:
        s3.add_client_error(
            "get_object",
            service_error_code="AccessDenied",
            service_message="Access Denied",
            http_status_code=403,
        )
        [result] = handler(upload_trigger_event(), None)["results"]

    assert result["status"] == "refused"
    assert "GetObject was denied (AccessDenied: Access Denied)" in result["reason"]
    assert "needs s3:GetObject" in result["reason"]
    [message] = notified(notifications)
    assert "needs s3:GetObject" in message["Message"]


def test_a_bad_trigger_body_is_published_too(deployed, notifications):
    deployed.put_dataset("fridge v2", trigger=b"{not json")

    [result] = handler(upload_trigger_event(), None)["results"]

    assert result["status"] == "refused"
    [message] = notified(notifications)
    assert "is not valid JSON" in message["Message"]


def test_an_upload_that_throttles_still_raises(deployed, sagemaker, notifications):
    deployed.put_dataset("fridge v2")
    create_fails_with(sagemaker, THROTTLED)

    with pytest.raises(ClientError, match="ThrottlingException"):
        handler(upload_trigger_event(), None)
    assert notified(notifications) == []


def test_a_failed_publish_is_logged_and_the_refusal_still_answered(deployed, sagemaker, caplog):
    """No topic in moto: the publish fails (NotFound), the invocation still returns."""
    deployed.put_dataset("fridge v2")
    create_fails_with(sagemaker, SPOT_LIMIT)

    [result] = handler(upload_trigger_event(), None)["results"]

    assert result["status"] == "refused"
    assert any("could not publish the refusal" in r.getMessage() for r in caplog.records)


def test_skipped_records_publish_nothing(deployed, notifications):
    handler(payload("s3_records_not_triggers.json"), None)

    assert notified(notifications) == []

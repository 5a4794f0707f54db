"""The launcher's IAM statements and its accepted cdk-nag and checkov findings (launcher.py).

The launcher may: list datasets/ and read trigger objects; create, describe and tag training
jobs and hyperparameter tuning jobs named detrain-*; describe images of this repository; pass
the training role, to SageMaker only; publish refusals to the notifications topic. Listing and
stopping jobs is the operator's (``detrain list``/``stop``, with their own credentials); the
function never does either, so its role cannot. Its uses of the platform key go through S3
(reading triggers) and SNS (publishing to the encrypted topic) only, by ``kms:ViaService``.

A training job's output is encrypted with the platform key (``OutputDataConfig.KmsKeyId``):
the caller of CreateTrainingJob needs no KMS permission for it (kms:CreateGrant only with a
``VolumeKmsKeyId``, which detrain does not set), the training role does (training_role.py).
https://docs.aws.amazon.com/sagemaker/latest/dg/api-permissions-reference.html
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs

from contract.names import DATASETS_PREFIX, JOB_NAME_PREFIX, TRIGGER_KEY_SUFFIX
from infra.checkov_skips import skip_check, skip_deploy_time_function
from infra.nag import INLINE_POLICY_REASON, acknowledge, logical_arn, region_arn
from infra.platform_key import via_service

SAGEMAKER_SERVICE = "sagemaker.amazonaws.com"


def launcher_statements(
    stack: Stack,
    *,
    bucket: s3.IBucket,
    key: kms.IKey,
    repository: ecr.IRepository,
    training_role: iam.IRole,
    topic: sns.ITopic,
) -> list[iam.PolicyStatement]:
    """Exact statements: what the launcher reads, starts, checks and passes; nothing else."""
    training_jobs = stack.format_arn(
        service="sagemaker", resource="training-job", resource_name=f"{JOB_NAME_PREFIX}*"
    )
    tuning_jobs = stack.format_arn(
        service="sagemaker",
        resource="hyper-parameter-tuning-job",
        resource_name=f"{JOB_NAME_PREFIX}*",
    )
    return [
        iam.PolicyStatement(
            sid="ListDatasets",
            actions=["s3:ListBucket"],
            resources=[bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{DATASETS_PREFIX}*"]}},
        ),
        iam.PolicyStatement(
            sid="ReadTriggers",
            actions=["s3:GetObject"],
            resources=[bucket.arn_for_objects(f"{DATASETS_PREFIX}*{TRIGGER_KEY_SUFFIX}")],
        ),
        iam.PolicyStatement(
            sid="DecryptTriggers",
            actions=["kms:Decrypt"],
            resources=[key.key_arn],
            conditions=via_service(stack, "s3"),
        ),
        iam.PolicyStatement(
            sid="ManageProjectTrainingJobs",
            actions=[
                "sagemaker:CreateTrainingJob",
                "sagemaker:DescribeTrainingJob",
                "sagemaker:AddTags",
            ],
            resources=[training_jobs],
        ),
        iam.PolicyStatement(
            sid="ManageProjectTuningJobs",
            actions=[
                "sagemaker:CreateHyperParameterTuningJob",
                "sagemaker:DescribeHyperParameterTuningJob",
                "sagemaker:AddTags",
            ],
            resources=[tuning_jobs],
        ),
        iam.PolicyStatement(
            sid="CheckTrainingImage",
            actions=["ecr:DescribeImages"],
            resources=[repository.repository_arn],
        ),
        iam.PolicyStatement(
            sid="PassTrainingRoleToSageMaker",
            actions=["iam:PassRole"],
            resources=[training_role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": SAGEMAKER_SERVICE}},
        ),
        iam.PolicyStatement(
            sid="PublishRefusals", actions=["sns:Publish"], resources=[topic.topic_arn]
        ),
        # What a publisher to a KMS-encrypted topic needs, per
        # https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html
        iam.PolicyStatement(
            sid="EncryptRefusals",
            actions=["kms:GenerateDataKey", "kms:Decrypt"],
            resources=[key.key_arn],
            conditions=via_service(stack, "sns"),
        ),
    ]


def acknowledge_launcher(
    *,
    role: iam.IRole,
    function: lambda_.IFunction,
    queue: sqs.IQueue,
    bucket: s3.IBucket,
    reserved_concurrency: int | None,
) -> None:
    """The launcher's accepted findings, each on the construct that owns it."""
    stack = Stack.of(role)
    triggers = f"{logical_arn(bucket)}/{DATASETS_PREFIX}*{TRIGGER_KEY_SUFFIX}"
    findings = {
        f"AwsSolutions-IAM5[Resource::{triggers}]": (
            "GetObject on the trigger object of a dataset only; dataset names are chosen "
            "after deploy."
        ),
        "AwsSolutions-IAM5[Resource::"
        + region_arn(stack, "sagemaker", f"training-job/{JOB_NAME_PREFIX}*")
        + "]": "Only this project's training jobs, by their fixed name prefix.",
        "AwsSolutions-IAM5[Resource::"
        + region_arn(stack, "sagemaker", f"hyper-parameter-tuning-job/{JOB_NAME_PREFIX}*")
        + "]": "Only this project's tuning jobs, by their fixed name prefix.",
        "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]": _QUEUE_KEY_REASON,
        "AwsSolutions-IAM5[Action::kms:ReEncrypt*]": _QUEUE_KEY_REASON,
        "NIST.800.53.R5-IAMNoInlinePolicy": INLINE_POLICY_REASON,
    }
    for finding, reason in findings.items():
        acknowledge(role, finding, reason)
    acknowledge(function, "NIST.800.53.R5-LambdaDLQ", _DESTINATION_REASON)
    skip_check(function, "CKV_AWS_116", _DESTINATION_REASON)
    acknowledge(function, "NIST.800.53.R5-LambdaInsideVPC", _NO_VPC_REASON)
    skip_check(function, "CKV_AWS_117", _NO_VPC_REASON)
    if reserved_concurrency is None:
        acknowledge(function, "NIST.800.53.R5-LambdaConcurrency", _NO_RESERVATION_REASON)
        skip_check(function, "CKV_AWS_115", _NO_RESERVATION_REASON)
    acknowledge(
        queue,
        "AwsSolutions-SQS3",
        "This queue is itself the launcher's failure destination; messages are kept 14 days "
        "for an operator to inspect and replay.",
    )
    notifications_handler = next(
        child
        for child in stack.node.children
        if child.node.id.startswith("BucketNotificationsHandler")
    )
    acknowledge(
        notifications_handler,
        # CDK writes managed policy ARNs with the AWS::Partition pseudo parameter, always.
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
        "AWSLambdaBasicExecutionRole]",
        "CDK's own handler that writes the bucket's notification configuration at deploy "
        "time; the managed policy grants it log writing only.",
    )
    skip_deploy_time_function(notifications_handler.node.find_child("Resource"))
    acknowledge(
        bucket.node.find_child("Notifications"),
        "NIST.800.53.R5-IAMNoInlinePolicy",
        "CDK's policy for its notification handler: s3:PutBucketNotification on this bucket "
        "only, created and deleted with it.",
    )


_QUEUE_KEY_REASON = (
    "CDK's grant to send to the KMS-encrypted failure queue; its only resource is the platform key."
)
_DESTINATION_REASON = (
    "Failed invocations go to an on-failure destination instead (the encrypted FailedLaunches "
    "queue): its records hold the event, the error and the stack trace."
)
_NO_RESERVATION_REASON = (
    "Off by default (detrain:launcherConcurrency): Lambda refuses a reservation that leaves "
    "under 100 unreserved, and new accounts may have a quota of 10, so a default reservation "
    "would fail the first deploy. One invocation per _launch.json; set the setting to cap it."
)
_NO_VPC_REASON = (
    "Accepted: the function calls only S3, SageMaker and ECR APIs and holds no data; the "
    "stack has no VPC, and one with interface endpoints would add fixed cost without "
    "protecting a data path. Planned: an optional VPC setting."
)

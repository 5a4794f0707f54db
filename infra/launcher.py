"""The launcher: a function that starts a training job when a dataset's trigger object lands.

Only ``datasets/<name>/_launch.json`` invokes it (an S3 notification filtered by prefix and
suffix), so a dataset of 10,000 images invokes it once. Failed invocations (after the
retries) go to an encrypted dead-letter queue.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, RemovalPolicy, Stack, SymlinkFollowMode
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.nag import INLINE_POLICY_REASON, acknowledge, logical_arn, region_arn
from infra.runtime import LAMBDA_RUNTIME, LOG_RETENTION
from launch_training.names import DATASETS_PREFIX, JOB_NAME_PREFIX, TRIGGER_FILENAME

HANDLER = "launch_training.handler.handler"
TRIGGER_SUFFIX = f"/{TRIGGER_FILENAME}"
RETRY_ATTEMPTS = 2
SAGEMAKER_SERVICE = "sagemaker.amazonaws.com"


class Launcher(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        code_dir: Path,
        environment: dict[str, str],
        bucket: s3.IBucket,
        key: kms.IKey,
        repository: ecr.IRepository,
        training_role: iam.IRole,
        reserved_concurrency: int,
        retain: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        removal = RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY
        self.log_group = logs.LogGroup(
            self, "Logs", retention=LOG_RETENTION, encryption_key=key, removal_policy=removal
        )
        self.dead_letters = sqs.Queue(
            self,
            "FailedLaunches",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
            removal_policy=removal,
        )
        self.role = iam.Role(
            self,
            "Role",
            description="The detrain launcher function",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        )
        for statement in _statements(
            Stack.of(self),
            bucket=bucket,
            key=key,
            repository=repository,
            training_role=training_role,
        ):
            self.role.add_to_policy(statement)
        self.log_group.grant_write(self.role)
        self.function = lambda_.Function(
            self,
            "Function",
            description="Starts a SageMaker training job for datasets/<name>/_launch.json",
            runtime=LAMBDA_RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            code=lambda_.Code.from_asset(
                str(code_dir),
                follow_symlinks=SymlinkFollowMode.ALWAYS,
                exclude=["__pycache__", "*.pyc", ".pytest_cache"],
            ),
            handler=HANDLER,
            environment=environment,
            role=self.role,
            log_group=self.log_group,
            memory_size=256,
            timeout=Duration.seconds(60),
            reserved_concurrent_executions=reserved_concurrency,
            retry_attempts=RETRY_ATTEMPTS,
            on_failure=destinations.SqsDestination(self.dead_letters),
        )
        bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED,
            s3n.LambdaDestination(self.function),
            s3.NotificationKeyFilter(prefix=DATASETS_PREFIX, suffix=TRIGGER_SUFFIX),
        )
        _acknowledge(self, bucket=bucket)


def _statements(
    stack: Stack,
    *,
    bucket: s3.IBucket,
    key: kms.IKey,
    repository: ecr.IRepository,
    training_role: iam.IRole,
) -> list[iam.PolicyStatement]:
    training_jobs = stack.format_arn(
        service="sagemaker", resource="training-job", resource_name=f"{JOB_NAME_PREFIX}*"
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
            resources=[bucket.arn_for_objects(f"{DATASETS_PREFIX}*{TRIGGER_SUFFIX}")],
        ),
        iam.PolicyStatement(
            sid="DecryptTriggers", actions=["kms:Decrypt"], resources=[key.key_arn]
        ),
        iam.PolicyStatement(
            sid="ManageProjectTrainingJobs",
            actions=[
                "sagemaker:CreateTrainingJob",
                "sagemaker:DescribeTrainingJob",
                "sagemaker:StopTrainingJob",
                "sagemaker:AddTags",
            ],
            resources=[training_jobs],
        ),
        iam.PolicyStatement(
            sid="ListTrainingJobs", actions=["sagemaker:ListTrainingJobs"], resources=["*"]
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
    ]


def _acknowledge(launcher: Launcher, *, bucket: s3.IBucket) -> None:
    stack = Stack.of(launcher)
    role = launcher.role
    findings = {
        f"AwsSolutions-IAM5[Resource::{logical_arn(bucket)}/{DATASETS_PREFIX}*{TRIGGER_SUFFIX}]": (
            "GetObject on the trigger object of a dataset only; dataset names are chosen "
            "after deploy."
        ),
        "AwsSolutions-IAM5[Resource::"
        + region_arn(stack, "sagemaker", f"training-job/{JOB_NAME_PREFIX}*")
        + "]": "Only this project's training jobs, by their fixed name prefix.",
        "AwsSolutions-IAM5[Resource::*]": (
            "sagemaker:ListTrainingJobs has no resource-level permissions (it finds running "
            "jobs of a dataset before starting another)."
        ),
        "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]": _QUEUE_KEY_REASON,
        "AwsSolutions-IAM5[Action::kms:ReEncrypt*]": _QUEUE_KEY_REASON,
        "NIST.800.53.R5-IAMNoInlinePolicy": INLINE_POLICY_REASON,
    }
    for finding, reason in findings.items():
        acknowledge(role, finding, reason)
    function = launcher.function
    acknowledge(
        function,
        "NIST.800.53.R5-LambdaDLQ",
        "Failed invocations go to an on-failure destination (the encrypted FailedLaunches "
        "queue), which records the event and the error, unlike a DLQ.",
    )
    acknowledge(function, "NIST.800.53.R5-LambdaInsideVPC", _NO_VPC_REASON)
    acknowledge(
        launcher.dead_letters,
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
    acknowledge(
        bucket.node.find_child("Notifications"),
        "NIST.800.53.R5-IAMNoInlinePolicy",
        "CDK's policy for its notification handler: s3:PutBucketNotification on this bucket "
        "only, created and deleted with it.",
    )


_QUEUE_KEY_REASON = (
    "CDK's grant to send to the KMS-encrypted failure queue; its only resource is the platform key."
)
_NO_VPC_REASON = (
    "Accepted: the function calls only S3, SageMaker and ECR APIs and holds no data; the "
    "stack has no VPC, and one with interface endpoints would add fixed cost without "
    "protecting a data path. Planned: an optional VPC setting."
)

"""The launcher: a function that starts a training job when a dataset's trigger object lands.

Only ``datasets/<name>/_launch.json`` invokes it (an S3 notification filtered by prefix and
suffix), so a dataset of 10,000 images invokes it once. Its environment is encrypted with the
platform key. Failed invocations (after the
retries) go to an encrypted dead-letter queue; launches refused for good (a quota, a
permission) are published to the notifications topic by the function itself. No concurrency
is reserved unless ``detrain:launcherConcurrency`` asks for it.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, Stack, SymlinkFollowMode
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from contract.names import DATASETS_PREFIX, TRIGGER_KEY_SUFFIX
from infra.launcher_policy import acknowledge_launcher, launcher_statements
from infra.runtime import LAMBDA_RUNTIME, LOG_RETENTION, removal_policy

HANDLER = "launch_training.handler.handler"
RETRY_ATTEMPTS = 2


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
        topic: sns.ITopic,
        reserved_concurrency: int | None,
        retain: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        removal = removal_policy(retain)
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
        for statement in launcher_statements(
            Stack.of(self),
            bucket=bucket,
            key=key,
            repository=repository,
            training_role=training_role,
            topic=topic,
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
            # Lambda grants the role use of the key for them itself (a KMS grant made at deploy).
            environment_encryption=key,
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
            s3.NotificationKeyFilter(prefix=DATASETS_PREFIX, suffix=TRIGGER_KEY_SUFFIX),
        )
        acknowledge_launcher(
            role=self.role,
            function=self.function,
            queue=self.dead_letters,
            bucket=bucket,
            reserved_concurrency=reserved_concurrency,
        )

"""The role SageMaker assumes for a training job: read datasets, write models and checkpoints
(and delete old checkpoints), pull this repository's image, write its own logs and metrics.

Permissions per https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html
(CreateTrainingJob: S3 input/output, ECR pull, CloudWatch Logs and metrics; kms:Decrypt for
SSE-KMS input; kms:Encrypt for a KMS key in the output configuration) and S3's SSE-KMS
(kms:GenerateDataKey to write, kms:Decrypt to read and to finish multipart uploads:
https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html).
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from contract.names import CHECKPOINTS_PREFIX, DATASETS_PREFIX, MODELS_PREFIX
from infra.nag import INLINE_POLICY_REASON, acknowledge, logical_arn, region_arn
from infra.platform_key import via_service

TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
METRICS_NAMESPACE = "/aws/sagemaker/TrainingJobs"


class TrainingRole(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: s3.IBucket,
        key: kms.IKey,
        repository: ecr.IRepository,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.role = iam.Role(
            self,
            "Role",
            description="Assumed by SageMaker training jobs of detrain",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com").with_conditions(
                {"StringEquals": {"aws:SourceAccount": stack.account}}
            ),
        )
        statements = [
            iam.PolicyStatement(
                sid="ListDatasetsAndCheckpoints",
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                conditions={
                    "StringLike": {"s3:prefix": [f"{DATASETS_PREFIX}*", f"{CHECKPOINTS_PREFIX}*"]}
                },
            ),
            iam.PolicyStatement(
                sid="ReadDatasetsAndCheckpoints",
                actions=["s3:GetObject"],
                resources=[
                    bucket.arn_for_objects(f"{DATASETS_PREFIX}*"),
                    bucket.arn_for_objects(f"{CHECKPOINTS_PREFIX}*"),
                ],
            ),
            iam.PolicyStatement(
                sid="WriteModelsAndCheckpoints",
                actions=["s3:PutObject"],
                resources=[
                    bucket.arn_for_objects(f"{MODELS_PREFIX}*"),
                    bucket.arn_for_objects(f"{CHECKPOINTS_PREFIX}*"),
                ],
            ),
            # The trainer keeps its last checkpoints only, and SageMaker mirrors a local delete
            # under /opt/ml/checkpoints into S3: without this, the sync of a prune is refused.
            iam.PolicyStatement(
                sid="PruneCheckpoints",
                actions=["s3:DeleteObject"],
                resources=[bucket.arn_for_objects(f"{CHECKPOINTS_PREFIX}*")],
            ),
            # S3 reads and writes SSE-KMS objects with the platform key on the role's behalf.
            iam.PolicyStatement(
                sid="UseTheDataKey",
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[key.key_arn],
                conditions=via_service(stack, "s3"),
            ),
            # The job's output is encrypted with the platform key (OutputDataConfig.KmsKeyId):
            # SageMaker requires kms:Encrypt of the role for it (no via-service is documented).
            iam.PolicyStatement(
                sid="EncryptJobOutput", actions=["kms:Encrypt"], resources=[key.key_arn]
            ),
            iam.PolicyStatement(
                sid="WriteTrainingLogs",
                actions=[
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:DescribeLogStreams",
                ],
                resources=[
                    self._training_logs_arn(stack, TRAINING_LOG_GROUP),
                    self._training_logs_arn(stack, f"{TRAINING_LOG_GROUP}:*"),
                ],
            ),
            iam.PolicyStatement(
                sid="PutTrainingMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": METRICS_NAMESPACE}},
            ),
        ]
        for statement in statements:
            self.role.add_to_policy(statement)
        repository.grant_pull(self.role)
        self._acknowledge(stack, bucket)

    @staticmethod
    def _training_logs_arn(stack: Stack, name: str) -> str:
        """The group's ARN (CreateLogGroup, DescribeLogStreams) or, with ``:*``, its streams'."""
        return stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name=name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )

    def _acknowledge(self, stack: Stack, bucket: s3.IBucket) -> None:
        for prefix in (DATASETS_PREFIX, CHECKPOINTS_PREFIX, MODELS_PREFIX):
            acknowledge(
                self.role,
                f"AwsSolutions-IAM5[Resource::{logical_arn(bucket)}/{prefix}*]",
                f"Objects under {prefix} only: job and dataset names are chosen after deploy, "
                "so the prefix is the narrowest fixed scope.",
            )
        training_logs = region_arn(stack, "logs", f"log-group:{TRAINING_LOG_GROUP}:*")
        acknowledge(
            self.role,
            f"AwsSolutions-IAM5[Resource::{training_logs}]",
            "SageMaker writes one log stream per job into this one fixed log group.",
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "ecr:GetAuthorizationToken and cloudwatch:PutMetricData have no resource-level "
            "permissions; image pulls are limited to this repository and metrics to "
            "SageMaker's namespace by condition.",
        )
        acknowledge(self.role, "NIST.800.53.R5-IAMNoInlinePolicy", INLINE_POLICY_REASON)

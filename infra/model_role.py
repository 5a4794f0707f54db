"""The role SageMaker assumes for a model (``detrain deploy``'s endpoints, ``detrain
transform``'s jobs): read the model archive under models/, read transform inputs under
datasets/, write transform results under models/<job>/transform/, pull this repository's
image, use the platform key through S3, write the endpoint's and transform job's logs.
Nothing more: no training, no checkpoints, no other bucket.

Permissions per https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html
(CreateModel: S3 read of the model data, ECR pull, CloudWatch Logs; the role of a transform
job's model also reads its input and writes its output).
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from contract.names import DATASETS_PREFIX, MODELS_PREFIX, TRANSFORM_FOLDER
from infra.nag import INLINE_POLICY_REASON, acknowledge, logical_arn, region_arn
from infra.platform_key import via_service

# SageMaker's log groups: one per endpoint (/aws/sagemaker/Endpoints/<name>), one shared by
# every transform job (a stream per job and instance).
ENDPOINT_LOG_GROUPS = "/aws/sagemaker/Endpoints/"
TRANSFORM_LOG_GROUP = "/aws/sagemaker/TransformJobs"
TRANSFORM_RESULTS = f"{MODELS_PREFIX}*/{TRANSFORM_FOLDER}*"


class ModelRole(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: s3.IBucket,
        key: kms.IKey,
        repository: ecr.IRepository,
        name_prefix: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.role = iam.Role(
            self,
            "Role",
            description="Assumed by SageMaker endpoints and batch transforms of detrain models",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com").with_conditions(
                {"StringEquals": {"aws:SourceAccount": stack.account}}
            ),
        )
        endpoint_logs = f"{ENDPOINT_LOG_GROUPS}{name_prefix}*"
        statements = [
            iam.PolicyStatement(
                sid="ListTransformInputs",
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                conditions={
                    "StringLike": {"s3:prefix": [f"{DATASETS_PREFIX}*", f"{MODELS_PREFIX}*"]}
                },
            ),
            iam.PolicyStatement(
                sid="ReadModelsAndTransformInputs",
                actions=["s3:GetObject"],
                resources=[
                    bucket.arn_for_objects(f"{MODELS_PREFIX}*"),
                    bucket.arn_for_objects(f"{DATASETS_PREFIX}*"),
                ],
            ),
            iam.PolicyStatement(
                sid="WriteTransformResults",
                actions=["s3:PutObject", "s3:AbortMultipartUpload"],
                resources=[bucket.arn_for_objects(TRANSFORM_RESULTS)],
            ),
            iam.PolicyStatement(
                sid="UseTheDataKey",
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[key.key_arn],
                conditions=via_service(stack, "s3"),
            ),
            iam.PolicyStatement(
                sid="WriteModelLogs",
                actions=[
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:DescribeLogStreams",
                ],
                resources=[
                    self._logs_arn(stack, endpoint_logs),
                    self._logs_arn(stack, f"{endpoint_logs}:*"),
                    self._logs_arn(stack, TRANSFORM_LOG_GROUP),
                    self._logs_arn(stack, f"{TRANSFORM_LOG_GROUP}:*"),
                ],
            ),
        ]
        for statement in statements:
            self.role.add_to_policy(statement)
        repository.grant_pull(self.role)
        self._acknowledge(stack, bucket, endpoint_logs)

    @staticmethod
    def _logs_arn(stack: Stack, name: str) -> str:
        return stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name=name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )

    def _acknowledge(self, stack: Stack, bucket: s3.IBucket, endpoint_logs: str) -> None:
        for objects in (f"{MODELS_PREFIX}*", f"{DATASETS_PREFIX}*", TRANSFORM_RESULTS):
            acknowledge(
                self.role,
                f"AwsSolutions-IAM5[Resource::{logical_arn(bucket)}/{objects}]",
                f"Objects under {objects} only: job names, endpoint names and transform "
                "inputs are chosen after deploy, so the prefix is the narrowest fixed scope.",
            )
        for group in (endpoint_logs, f"{endpoint_logs}:*", f"{TRANSFORM_LOG_GROUP}:*"):
            acknowledge(
                self.role,
                f"AwsSolutions-IAM5[Resource::{region_arn(stack, 'logs', f'log-group:{group}')}]",
                "SageMaker names the log group after the endpoint (this project's prefix only) "
                "and writes one stream per transform job and instance.",
            )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "ecr:GetAuthorizationToken has no resource-level permissions; image pulls are "
            "limited to this repository.",
        )
        acknowledge(self.role, "NIST.800.53.R5-IAMNoInlinePolicy", INLINE_POLICY_REASON)

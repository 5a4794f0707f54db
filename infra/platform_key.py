"""The platform's customer-managed KMS key (rotated): data bucket, logs, queue, topic, builds."""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.runtime import removal_policy


class PlatformKey(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, retain: bool) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.key = kms.Key(
            self,
            "Key",
            description="detrain: data bucket, log groups, dead-letter queue, topic, image builds",
            enable_key_rotation=True,
            pending_window=Duration.days(7 if not retain else 30),
            removal_policy=removal_policy(retain),
        )
        # CloudWatch Logs encrypts this account's log groups in this region with it.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchLogsInThisAccount",
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                actions=[
                    "kms:Encrypt",
                    "kms:Decrypt",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:DescribeKey",
                ],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": stack.format_arn(
                            service="logs",
                            resource="log-group",
                            resource_name="*",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    }
                },
            )
        )
        # EventBridge's use of the key for the encrypted topic is granted by the topic's
        # SnsTopic target (Topic.grant_publish adds it to this policy).


def via_service(stack: Stack, service: str) -> dict:
    """An IAM condition: a principal may use the key only through ``service`` in this region
    (S3 reading or writing an SSE-KMS object, SNS encrypting a message), on its behalf."""
    return {"StringEquals": {"kms:ViaService": f"{service}.{stack.region}.amazonaws.com"}}

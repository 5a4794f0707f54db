"""The data bucket (datasets/ in, models/ and checkpoints/ out) and its access-log bucket.

Layout (contract/names.py): ``datasets/<name>/`` holds a dataset and its ``_launch.json`` trigger;
``models/<job>/output/model.tar.gz`` is a job's output; ``checkpoints/<job>/`` its checkpoints.
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from contract.names import CHECKPOINTS_PREFIX, data_bucket_name
from infra.checkov_skips import skip_check
from infra.nag import acknowledge
from infra.runtime import removal_policy

NONCURRENT_VERSIONS_DAYS = 30
INCOMPLETE_UPLOADS_DAYS = 7
CHECKPOINTS_DAYS = 90
ACCESS_LOGS_DAYS = 365


class DataBucket(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, key: kms.IKey, retain: bool) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        removal = removal_policy(retain)
        common = {
            "block_public_access": s3.BlockPublicAccess.BLOCK_ALL,
            "enforce_ssl": True,
            "minimum_tls_version": 1.2,
            "object_ownership": s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            "versioned": True,
            "removal_policy": removal,
        }
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=Duration.days(ACCESS_LOGS_DAYS),
                    noncurrent_version_expiration=Duration.days(NONCURRENT_VERSIONS_DAYS),
                    abort_incomplete_multipart_upload_after=Duration.days(INCOMPLETE_UPLOADS_DAYS),
                )
            ],
            **common,
        )
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            bucket_name=data_bucket_name(stack.account, stack.region),
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="data-bucket/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="old-versions-and-incomplete-uploads",
                    noncurrent_version_expiration=Duration.days(NONCURRENT_VERSIONS_DAYS),
                    abort_incomplete_multipart_upload_after=Duration.days(INCOMPLETE_UPLOADS_DAYS),
                    expired_object_delete_marker=True,
                ),
                s3.LifecycleRule(
                    id="expire-checkpoints",
                    prefix=CHECKPOINTS_PREFIX,
                    expiration=Duration.days(CHECKPOINTS_DAYS),
                ),
            ],
            **common,
        )
        for bucket in (self.bucket, self.access_logs):
            acknowledge(
                bucket.node.default_child,
                "NIST.800.53.R5-S3BucketReplicationEnabled",
                "Accepted: datasets are copies of the user's own data and models can be "
                "retrained; versioning protects against deletion. Cross-region replication "
                "is planned as an option (it doubles storage cost).",
            )
        # cdk-nag counts a bucket that receives another's access logs as logged (S1); checkov not.
        skip_check(
            self.access_logs,
            "CKV_AWS_18",
            "This bucket receives the data bucket's access logs; logging it too would need a "
            "third bucket, whose own logs would go unlogged in turn.",
        )
        acknowledge(
            self.access_logs.node.default_child,
            "NIST.800.53.R5-S3DefaultEncryptionKMS",
            "S3 server access logging delivers only to buckets encrypted with SSE-S3 (AES-256).",
        )

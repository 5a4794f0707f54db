"""infra/data_bucket.py: TLS only, private, encrypted with the platform key, versioned,
access-logged, lifecycle for old versions and incomplete uploads."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match

from contract.names import CHECKPOINTS_PREFIX


def _data_bucket(synthesized) -> dict:
    for bucket in synthesized.resources("AWS::S3::Bucket").values():
        if "LoggingConfiguration" in bucket["Properties"]:
            return bucket["Properties"]
    raise AssertionError("no access-logged bucket")


def test_both_buckets_block_public_access_and_are_versioned(template):
    template.resource_properties_count_is(
        "AWS::S3::Bucket",
        {
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "VersioningConfiguration": {"Status": "Enabled"},
            "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
        },
        2,
    )


def test_both_buckets_deny_requests_without_tls(synthesized):
    policies = synthesized.resources("AWS::S3::BucketPolicy").values()
    denials = [
        statement
        for policy in policies
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Effect"] == "Deny"
        and statement.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
    ]

    assert len(denials) == 2
    assert all(statement["Action"] == "s3:*" for statement in denials)
    assert all(statement["Principal"] == {"AWS": "*"} for statement in denials)


def test_old_tls_versions_are_denied(synthesized):
    text = json.dumps(list(synthesized.resources("AWS::S3::BucketPolicy").values()))

    assert '"s3:TlsVersion": 1.2' in text


def test_the_data_bucket_is_encrypted_with_the_platform_key_and_logged(synthesized):
    bucket = _data_bucket(synthesized)

    rule = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert "PlatformKey" in json.dumps(rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"])
    assert rule["BucketKeyEnabled"] is True
    assert bucket["LoggingConfiguration"]["LogFilePrefix"] == "data-bucket/"


def test_the_data_bucket_is_named_for_account_and_region(synthesized):
    name = json.dumps(_data_bucket(synthesized)["BucketName"])

    assert "detrain-data-" in name
    assert "AWS::AccountId" in name and "AWS::Region" in name


def test_the_data_bucket_expires_old_versions_uploads_and_checkpoints(synthesized):
    rules = _data_bucket(synthesized)["LifecycleConfiguration"]["Rules"]

    general = next(rule for rule in rules if "Prefix" not in rule)
    assert general["NoncurrentVersionExpiration"]["NoncurrentDays"] > 0
    assert general["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] > 0
    checkpoints = next(rule for rule in rules if rule.get("Prefix") == CHECKPOINTS_PREFIX)
    assert checkpoints["ExpirationInDays"] > 0


def test_the_access_log_bucket_uses_s3_managed_keys(template):
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                ]
            },
            "LifecycleConfiguration": {"Rules": Match.any_value()},
        },
    )


def test_buckets_are_retained_by_default_and_destroyed_on_request(synthesized, other_shape):
    retained = synthesized.resources("AWS::S3::Bucket").values()
    destroyed = other_shape.resources("AWS::S3::Bucket")

    assert {bucket["DeletionPolicy"] for bucket in retained} == {"RetainExceptOnCreate"}
    assert {bucket["DeletionPolicy"] for bucket in destroyed.values()} == {"Delete"}

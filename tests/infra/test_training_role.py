"""infra/training_role.py: SageMaker reads datasets/, writes models/ and checkpoints/,
pulls this repository, writes its logs and metrics; nothing more."""

from __future__ import annotations

import pytest

from tests.support.infra_policies import actions, by_sid, statements_of, text


@pytest.fixture(scope="module")
def statements(synthesized) -> list[dict]:
    return statements_of(synthesized, "TrainingRole")


def test_only_sagemaker_of_this_account_may_assume_it(synthesized):
    (role,) = [
        r
        for n, r in synthesized.resources("AWS::IAM::Role").items()
        if n.startswith("TrainingRole")
    ]
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]

    assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert trust["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert "ManagedPolicyArns" not in role["Properties"]


def test_it_reads_datasets_and_writes_models_and_checkpoints_only(statements):
    read = by_sid(statements, "ReadDatasetsAndCheckpoints")
    write = by_sid(statements, "WriteModelsAndCheckpoints")
    listing = by_sid(statements, "ListDatasetsAndCheckpoints")

    assert read["Action"] == "s3:GetObject"
    assert "/datasets/*" in text(read["Resource"]) and "/models/" not in text(read["Resource"])
    assert write["Action"] == "s3:PutObject"
    assert "/models/*" in text(write) and "/checkpoints/*" in text(write)
    assert "/datasets/" not in text(write)
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["datasets/*", "checkpoints/*"]}}


def test_it_has_no_wildcard_actions_and_no_other_services(statements):
    granted = actions(statements)

    assert not any(action.endswith("*") for action in granted)
    assert {action.split(":")[0] for action in granted} == {
        "s3",
        "kms",
        "ecr",
        "logs",
        "cloudwatch",
    }
    assert "s3:DeleteObject" in granted  # checkpoints only: see the next test


def test_it_may_delete_old_checkpoints_and_nothing_else(statements):
    deletes = [s for s in statements if "s3:DeleteObject" in text(s["Action"])]

    assert [s["Sid"] for s in deletes] == ["PruneCheckpoints"]
    assert "/checkpoints/*" in text(deletes[0]["Resource"])
    assert "/datasets/" not in text(deletes[0]) and "/models/" not in text(deletes[0])


def test_metrics_are_limited_to_sagemakers_namespace(statements):
    metrics = by_sid(statements, "PutTrainingMetrics")

    assert metrics["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/TrainingJobs"}
    }


def test_it_pulls_from_this_repository_only(statements):
    pulls = [s for s in statements if "ecr:BatchGetImage" in text(s["Action"])]

    assert len(pulls) == 1
    assert "ImagesRepository" in text(pulls[0]["Resource"])


def test_it_writes_to_sagemakers_training_log_group_and_its_streams(statements):
    logs = by_sid(statements, "WriteTrainingLogs")

    resources = [text(resource) for resource in logs["Resource"]]
    assert [r for r in resources if r.endswith(':log-group:/aws/sagemaker/TrainingJobs"]]}')]
    assert [r for r in resources if r.endswith(':log-group:/aws/sagemaker/TrainingJobs:*"]]}')]
    assert len(resources) == 2


def test_it_may_encrypt_the_job_output_with_the_platform_key(statements, synthesized):
    """OutputDataConfig.KmsKeyId needs kms:Encrypt of the execution role (sagemaker-roles)."""
    (key,) = synthesized.resources("AWS::KMS::Key")
    encrypt = by_sid(statements, "EncryptJobOutput")

    assert encrypt["Action"] == "kms:Encrypt"
    assert encrypt["Resource"] == {"Fn::GetAtt": [key, "Arn"]}


def test_it_uses_the_data_key_only_through_s3(statements):
    data_key = by_sid(statements, "UseTheDataKey")

    assert set(data_key["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey"}
    assert text(data_key["Condition"]["StringEquals"]["kms:ViaService"]) == text(
        {"Fn::Join": ["", ["s3.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}
    )
    assert "kms:CreateGrant" not in actions(statements)  # only for a VolumeKmsKeyId (unset)

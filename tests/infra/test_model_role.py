"""infra/model_role.py: SageMaker reads models/ (and transform inputs under datasets/), writes
transform results under models/<job>/transform/, pulls this repository, uses the key through
S3, writes its endpoints' and transform jobs' logs; nothing more."""

from __future__ import annotations

import pytest

from contract.names import Output
from tests.support.infra_policies import actions, by_sid, statements_of, text


@pytest.fixture(scope="module")
def statements(synthesized) -> list[dict]:
    return statements_of(synthesized, "ModelsRole")


def test_only_sagemaker_of_this_account_may_assume_it(synthesized):
    (role,) = [
        r for n, r in synthesized.resources("AWS::IAM::Role").items() if n.startswith("ModelsRole")
    ]
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]

    assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert trust["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert "ManagedPolicyArns" not in role["Properties"]


def test_it_reads_models_and_datasets_and_writes_transform_results_only(statements):
    read = by_sid(statements, "ReadModelsAndTransformInputs")
    write = by_sid(statements, "WriteTransformResults")

    assert read["Action"] == "s3:GetObject"
    assert "/models/*" in text(read["Resource"]) and "/datasets/*" in text(read["Resource"])
    assert "/checkpoints/" not in text(statements)
    assert set(write["Action"]) == {"s3:PutObject", "s3:AbortMultipartUpload"}
    assert '/models/*/transform/*"' in text(write["Resource"])
    assert [s["Sid"] for s in statements if "s3:PutObject" in text(s["Action"])] == [
        "WriteTransformResults"
    ]


def test_it_has_no_wildcard_actions_no_deletes_and_no_other_services(statements):
    granted = actions(statements)

    assert not any(action.endswith("*") for action in granted)
    assert not any("Delete" in action for action in granted)
    assert {action.split(":")[0] for action in granted} == {"s3", "kms", "ecr", "logs"}


def test_it_pulls_from_this_repository_only(statements):
    pulls = [s for s in statements if "ecr:BatchGetImage" in text(s["Action"])]

    assert len(pulls) == 1
    assert "ImagesRepository" in text(pulls[0]["Resource"])


def test_it_uses_the_data_key_only_through_s3(statements):
    data_key = by_sid(statements, "UseTheDataKey")

    assert set(data_key["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey"}
    assert "s3." in text(data_key["Condition"]["StringEquals"]["kms:ViaService"])


def test_it_writes_the_logs_of_this_projects_endpoints_and_of_transform_jobs(statements):
    logs = by_sid(statements, "WriteModelLogs")

    resources = [text(resource) for resource in logs["Resource"]]
    assert [r for r in resources if "log-group:/aws/sagemaker/Endpoints/detrain-*:*" in r]
    assert [r for r in resources if "log-group:/aws/sagemaker/TransformJobs:*" in r]
    assert not [r for r in resources if "/Endpoints/*" in r]
    assert len(resources) == 4


def test_the_stack_exports_the_role_and_the_endpoint_allow_list(template):
    outputs = template.to_json()["Outputs"]

    assert "ModelsRole" in text(outputs[Output.MODEL_ROLE_ARN]["Value"])
    assert outputs[Output.ENDPOINT_INSTANCE_TYPES]["Value"] == (
        "ml.m5.xlarge,ml.c5.xlarge,ml.g4dn.xlarge,ml.g5.xlarge"
    )

"""infra/launcher.py: the function, its trigger filter, its failure handling and its IAM."""

from __future__ import annotations

import pytest

from contract.names import DATASETS_PREFIX, TRIGGER_FILENAME, Env
from infra.launcher import HANDLER
from tests.support.infra_policies import actions, by_sid, statements_of, text


@pytest.fixture(scope="module")
def function(synthesized) -> dict:
    return _launcher(synthesized)


@pytest.fixture(scope="module")
def statements(synthesized) -> list[dict]:
    return statements_of(synthesized, "LauncherRole")


def _only_id(synthesized, resource_type: str) -> str:
    (name,) = synthesized.resources(resource_type)
    return name


def _launcher(synthesized) -> dict:
    (found,) = [
        f["Properties"]
        for f in synthesized.resources("AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == HANDLER
    ]
    return found


def test_only_a_datasets_trigger_object_invokes_it(synthesized):
    notifications = synthesized.only("Custom::S3BucketNotifications")
    (configuration,) = notifications["NotificationConfiguration"]["LambdaFunctionConfigurations"]

    rules = {rule["Name"]: rule["Value"] for rule in configuration["Filter"]["Key"]["FilterRules"]}
    assert rules == {"prefix": DATASETS_PREFIX, "suffix": f"/{TRIGGER_FILENAME}"}
    assert configuration["Events"] == ["s3:ObjectCreated:*"]
    assert "LauncherFunction" in text(configuration["LambdaFunctionArn"])


def test_only_the_bucket_of_this_account_may_invoke_it(synthesized):
    permissions = [
        p["Properties"]
        for p in synthesized.resources("AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == "s3.amazonaws.com"
    ]

    (permission,) = permissions
    assert "DataBucket" in text(permission["SourceArn"])
    assert permission["SourceAccount"] == {"Ref": "AWS::AccountId"}


def test_it_runs_the_newest_python_with_the_settings_environment(function):
    variables = function["Environment"]["Variables"]

    assert function["Runtime"] == "python3.14"
    assert set(variables) == {v for k, v in vars(Env).items() if not k.startswith("_")}
    assert variables[Env.ALLOWED_INSTANCE_TYPES].startswith("ml.g5.xlarge,")
    assert variables[Env.SPOT] == "preferred"
    assert variables[Env.MAX_INSTANCE_COUNT] == "2"


def test_it_is_given_the_platform_key_for_job_output_and_the_notifications_topic(
    function, synthesized
):
    variables = function["Environment"]["Variables"]

    key = _only_id(synthesized, "AWS::KMS::Key")
    topic = _only_id(synthesized, "AWS::SNS::Topic")
    assert variables[Env.OUTPUT_KMS_KEY_ARN] == {"Fn::GetAtt": [key, "Arn"]}
    assert variables[Env.NOTIFICATIONS_TOPIC_ARN] == {"Ref": topic}


def test_no_concurrency_is_reserved_unless_the_setting_asks(function, other_shape):
    """A reservation must leave 100 unreserved; a new account's quota may be 10 in all."""
    assert "ReservedConcurrentExecutions" not in function
    assert _launcher(other_shape)["ReservedConcurrentExecutions"] == 5


def test_its_log_group_is_kept_a_year(function, synthesized):
    assert "LauncherLogs" in text(function["LoggingConfig"]["LogGroup"])
    groups = synthesized.resources("AWS::Logs::LogGroup")
    (group,) = [g for name, g in groups.items() if name.startswith("LauncherLogs")]
    assert group["Properties"]["RetentionInDays"] == 365
    assert "KmsKeyId" in group["Properties"]


def test_failed_launches_go_to_an_encrypted_queue(synthesized):
    config = synthesized.only("AWS::Lambda::EventInvokeConfig")
    queue = synthesized.only("AWS::SQS::Queue")

    assert config["MaximumRetryAttempts"] == 2
    assert "LauncherFailedLaunches" in text(config["DestinationConfig"]["OnFailure"])
    assert "PlatformKey" in text(queue["KmsMasterKeyId"])


def test_it_may_pass_only_the_training_role_and_only_to_sagemaker(statements):
    passing = [s for s in statements if "iam:PassRole" in text(s["Action"])]

    (statement,) = passing
    assert statement["Action"] == "iam:PassRole"
    assert "TrainingRole" in text(statement["Resource"])
    assert statement["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }


def test_it_manages_only_this_projects_training_jobs(statements):
    jobs = by_sid(statements, "ManageProjectTrainingJobs")

    assert set(jobs["Action"]) == {
        "sagemaker:CreateTrainingJob",
        "sagemaker:DescribeTrainingJob",
        "sagemaker:AddTags",
    }
    assert text(jobs["Resource"]).endswith(':training-job/detrain-*"]]}')


def test_it_starts_and_describes_only_this_projects_tuning_jobs(statements):
    tuning = by_sid(statements, "ManageProjectTuningJobs")

    assert set(tuning["Action"]) == {
        "sagemaker:CreateHyperParameterTuningJob",
        "sagemaker:DescribeHyperParameterTuningJob",
        "sagemaker:AddTags",
    }
    assert text(tuning["Resource"]).endswith(':hyper-parameter-tuning-job/detrain-*"]]}')


def test_it_reads_trigger_objects_and_lists_datasets_only(statements):
    read = by_sid(statements, "ReadTriggers")
    listing = by_sid(statements, "ListDatasets")

    assert read["Action"] == "s3:GetObject"
    assert text(read["Resource"]).endswith('/datasets/*/_launch.json"]]}')
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["datasets/*"]}}


def test_it_may_publish_refusals_to_the_encrypted_topic_and_nowhere_else(statements, synthesized):
    topic = _only_id(synthesized, "AWS::SNS::Topic")
    key = _only_id(synthesized, "AWS::KMS::Key")
    publishing = [s for s in statements if "sns:Publish" in text(s["Action"])]
    encrypting = by_sid(statements, "EncryptRefusals")

    assert [s["Resource"] for s in publishing] == [{"Ref": topic}]
    assert set(encrypting["Action"]) == {"kms:GenerateDataKey", "kms:Decrypt"}
    assert encrypting["Resource"] == {"Fn::GetAtt": [key, "Arn"]}
    assert text(encrypting["Condition"]["StringEquals"]["kms:ViaService"]) == text(
        {"Fn::Join": ["", ["sns.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}
    )


def test_it_decrypts_triggers_only_through_s3(statements):
    decrypt = by_sid(statements, "DecryptTriggers")

    assert "s3." in text(decrypt["Condition"]["StringEquals"]["kms:ViaService"])


def test_it_needs_no_grant_to_start_a_job_with_an_encrypted_output(statements):
    """kms:CreateGrant is for a VolumeKmsKeyId (api-permissions-reference), which is unset."""
    assert "kms:CreateGrant" not in actions(statements)


def test_it_has_no_service_wide_wildcards(statements):
    granted = actions(statements)

    assert not any(action.endswith(":*") for action in granted)
    assert "s3:PutObject" not in granted
    assert "ecr:DescribeImages" in granted


def test_no_statement_covers_every_resource(statements):
    assert [s["Action"] for s in statements if s["Resource"] == "*"] == []

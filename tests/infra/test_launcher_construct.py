"""infra/launcher.py: the function, its trigger filter, its failure handling and its IAM."""

from __future__ import annotations

import pytest
from infra_policies import actions, by_sid, statements_of, text

from infra.launcher import HANDLER
from launch_training.names import DATASETS_PREFIX, TRIGGER_FILENAME, Env


@pytest.fixture(scope="module")
def function(synthesized) -> dict:
    (found,) = [
        f["Properties"]
        for f in synthesized.resources("AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == HANDLER
    ]
    return found


@pytest.fixture(scope="module")
def statements(synthesized) -> list[dict]:
    return statements_of(synthesized, "LauncherRole")


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


def test_it_has_reserved_concurrency_and_a_log_group_kept_a_year(function, synthesized):
    assert function["ReservedConcurrentExecutions"] == 2
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


def test_it_reads_trigger_objects_and_lists_datasets_only(statements):
    read = by_sid(statements, "ReadTriggers")
    listing = by_sid(statements, "ListDatasets")

    assert read["Action"] == "s3:GetObject"
    assert text(read["Resource"]).endswith('/datasets/*/_launch.json"]]}')
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["datasets/*"]}}


def test_it_has_no_service_wide_wildcards(statements):
    granted = actions(statements)

    assert not any(action.endswith(":*") for action in granted)
    assert "s3:PutObject" not in granted
    assert "ecr:DescribeImages" in granted


def test_no_statement_covers_every_resource(statements):
    assert [s["Action"] for s in statements if s["Resource"] == "*"] == []

"""The CreateTrainingJob request: name rules, allow-list, spot, hyperparameters (pure)."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime

import pytest

from contract import TRAINING_CHANNEL
from contract.launcher_settings import LauncherSettings
from contract.metrics import metric_definitions
from infra import settings as infra_settings
from launch_training import events, request
from launch_training.events import Refused
from launch_training.request import LaunchRequest, Overrides, parse_overrides
from tests.support.launcher_world import BUCKET, ENVIRONMENT, IMAGE_URI, SAMPLE_EVENTS, sample_event

SETTINGS = LauncherSettings.from_environ(ENVIRONMENT)
WHEN = datetime(2025, 6, 2, 8, 30, 15, tzinfo=UTC)
NAME_RULE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")


def build(dataset="fridge", config=SETTINGS, **overrides):
    launch = LaunchRequest(
        dataset=dataset,
        overrides=parse_overrides(overrides, source="test"),
        trigger=request.TRIGGER_UPLOAD,
        identity=f"s3://{BUCKET}/datasets/{dataset}/_launch.json#1",
        requested_at=WHEN,
    )
    return request.create_training_job_request(launch, config)


def test_defaults_make_a_complete_request():
    job = build()

    assert job["TrainingJobName"] == request.job_name(
        "fridge", WHEN, f"s3://{BUCKET}/datasets/fridge/_launch.json#1"
    )
    assert job["AlgorithmSpecification"] == {
        "TrainingImage": IMAGE_URI,
        "TrainingInputMode": "File",
        "MetricDefinitions": metric_definitions(),
    }
    [channel] = job["InputDataConfig"]
    assert channel["ChannelName"] == TRAINING_CHANNEL
    assert channel["DataSource"]["S3DataSource"]["S3Uri"] == f"s3://{BUCKET}/datasets/fridge/"
    assert job["OutputDataConfig"] == {
        "S3OutputPath": f"s3://{BUCKET}/models/",
        "KmsKeyId": ENVIRONMENT["OUTPUT_KMS_KEY_ARN"],
    }
    assert job["EnableNetworkIsolation"] is True
    assert job["EnableInterContainerTrafficEncryption"] is True
    assert job["Environment"] == {
        "DETRAIN_MAX_RUNTIME_SECONDS": str(job["StoppingCondition"]["MaxRuntimeInSeconds"])
    }
    assert (
        job["CheckpointConfig"]["S3Uri"] == f"s3://{BUCKET}/checkpoints/{job['TrainingJobName']}/"
    )
    assert job["ResourceConfig"]["InstanceType"] == "ml.g5.xlarge"
    assert job["ResourceConfig"]["InstanceCount"] == 1
    assert job["RoleArn"] == ENVIRONMENT["TRAINING_ROLE_ARN"]
    assert {t["Key"]: t["Value"] for t in job["Tags"]} == {
        "project": "detrain",
        "dataset": "fridge",
        "trigger": "upload",
    }
    assert job["HyperParameters"]["model"] == "faster_rcnn"
    assert all(isinstance(v, str) for v in job["HyperParameters"].values())


def test_fastfile_input_mode_is_selectable_in_any_case():
    job = build(input_mode="fastfile")

    assert job["AlgorithmSpecification"]["TrainingInputMode"] == "FastFile"
    assert job["InputDataConfig"][0]["InputMode"] == "FastFile"


@pytest.mark.parametrize(
    "dataset",
    ["fridge", "red flowers ç 50% a+b", "花", "-x-", "a" * 200, "UPPER_case.v2"],
)
def test_job_names_are_valid_and_at_most_63_characters(dataset):
    extremes = (datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC))
    for when in (WHEN, None, *extremes):
        name = request.job_name(dataset, when, "identity")

        assert len(name) <= 63
        assert NAME_RULE.match(name), name
    name = request.job_name(dataset, WHEN, "identity")
    assert name.startswith("detrain-") and "-20250602-083015-" in name


def test_job_name_is_deterministic_per_identity():
    same = request.job_name("fridge", WHEN, "s3://b/k#v1")

    assert request.job_name("fridge", WHEN, "s3://b/k#v1") == same
    assert request.job_name("fridge", WHEN, "s3://b/k#v2") != same


def test_a_requested_job_name_gets_the_prefix():
    assert build(job_name="exp-7")["TrainingJobName"] == "detrain-exp-7"
    assert build(job_name="detrain-exp-7")["TrainingJobName"] == "detrain-exp-7"


@pytest.mark.parametrize("name", ["exp_7", "exp--", "exp!", "x" * 60, "exp 7", "ç"])
def test_an_invalid_job_name_is_refused_with_the_rule(name):
    with pytest.raises(Refused, match="not a valid training job name; allowed: at most 63") as e:
        build(job_name=name)
    assert f"'job_name' = {name!r} is not" in str(e.value)  # as the user wrote it


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"instance_type": "ml.p5.48xlarge"},
            "'ml.p5.48xlarge' is not allowed.*ml.g5.xlarge, ml.g5.2xlarge",
        ),
        ({"instance_count": 3}, "'instance_count' = 3 .* allowed: 1 to 2"),
        ({"instance_count": 0}, "allowed: 1 to 2"),
        ({"max_runtime_hours": 13}, "'max_runtime_hours' = 13 .* at most 12"),
        ({"max_runtime_hours": 0}, "more than 0"),
    ],
)
def test_overrides_outside_the_allow_list_are_refused(overrides, message):
    with pytest.raises(Refused, match=message):
        build(**overrides)


def test_allowed_overrides_are_applied():
    job = build(instance_type="ml.g5.2xlarge", instance_count=2, max_runtime_hours=1.5)

    assert job["ResourceConfig"]["InstanceType"] == "ml.g5.2xlarge"
    assert job["ResourceConfig"]["InstanceCount"] == 2
    assert job["StoppingCondition"]["MaxRuntimeInSeconds"] == 5400


@pytest.mark.parametrize(
    ("mode", "requested", "spot"),
    [
        ("preferred", None, True),
        ("preferred", False, False),
        ("required", None, True),
        ("off", None, False),
    ],
)
def test_spot_modes(mode, requested, spot):
    config = dataclasses.replace(SETTINGS, spot=mode)
    job = build(config=config, **({} if requested is None else {"spot": requested}))

    stopping = job["StoppingCondition"]
    assert job["EnableManagedSpotTraining"] is spot
    if spot:
        assert stopping["MaxWaitTimeInSeconds"] > stopping["MaxRuntimeInSeconds"]
    else:
        assert "MaxWaitTimeInSeconds" not in stopping


@pytest.mark.parametrize(("mode", "requested"), [("required", False), ("off", True)])
def test_spot_against_the_deployment_is_refused(mode, requested):
    with pytest.raises(Refused, match=f"'spot' = {str(requested).lower()} is not allowed"):
        build(config=dataclasses.replace(SETTINGS, spot=mode), spot=requested)


@pytest.mark.parametrize(
    ("hyperparameters", "message"),
    [
        ({"epochs": 0}, "'epochs' = 0 is out of range; allowed: 1 to 1000"),
        ({"epochs": "many"}, "'epochs' = 'many' must be an integer"),
        ({"model": "yolo"}, "'model' = 'yolo' is not supported; allowed: faster_rcnn"),
        ({"learning_rate": "1e9"}, "out of range"),
        ({"image_size": 500}, "multiple of 32"),
        ({"dropout": 0.1}, "unknown hyperparameter 'dropout'; allowed: model, backbone"),
    ],
)
def test_hyperparameters_are_checked_by_the_trainers_rules(hyperparameters, message):
    with pytest.raises(Refused, match=message):
        build(hyperparameters=hyperparameters)


def test_hyperparameters_are_stringified_in_the_raw_encoding():
    job = build(
        hyperparameters={"model": "efficientdet", "epochs": 3, "amp": False, "image_size": "256"}
    )

    hp = job["HyperParameters"]
    assert (hp["model"], hp["backbone"], hp["epochs"], hp["amp"], hp["image_size"]) == (
        "efficientdet",
        "tf_lite0",
        "3",
        "false",
        "256",
    )
    assert len(hp) <= 100 and all(len(k) <= 256 and len(v) <= 256 for k, v in hp.items())


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"instance_typ": "ml.g5.xlarge"},
            "unknown field 'instance_typ'; allowed: hyperparameters",
        ),
        ({"dataset": "fridge"}, "unknown field 'dataset'"),
        ({"hyperparameters": [1]}, "must be a JSON object"),
        ({"instance_count": 1.5}, "must be a whole number"),
        ({"instance_count": True}, "must be a whole number"),
        ({"spot": "yes"}, "'spot' = 'yes' must be true or false"),
        ({"max_runtime_hours": "soon"}, "must be a number"),
        ({"input_mode": "Pipe"}, "'input_mode' = 'Pipe' is not allowed; allowed: File, FastFile"),
        ({"job_name": ""}, "must be a non-empty string"),
    ],
)
def test_override_fields_are_type_checked(body, message):
    with pytest.raises(Refused, match=message):
        parse_overrides(body, source="the trigger")


def test_hand_typed_strings_are_accepted_where_unambiguous():
    parsed = parse_overrides(
        {"instance_count": "2", "spot": "False", "max_runtime_hours": "1.5"}, source="test"
    )

    assert parsed == Overrides(instance_count=2, spot=False, max_runtime_hours=1.5)


def test_tag_values_keep_only_what_tags_allow():
    tags = {t["Key"]: t["Value"] for t in build(dataset="red flowers ç 50% a+b")["Tags"]}

    assert tags["dataset"] == "red flowers ç 50_ a+b"


def test_s3_distribution_defaults_to_fully_replicated_and_is_selectable():
    source = build()["InputDataConfig"][0]["DataSource"]["S3DataSource"]
    assert source["S3DataDistributionType"] == "FullyReplicated"
    job = build(instance_count=2, s3_distribution="shardedbys3key")
    source = job["InputDataConfig"][0]["DataSource"]["S3DataSource"]
    assert source["S3DataDistributionType"] == "ShardedByS3Key"
    with pytest.raises(Refused, match="'s3_distribution' = 'Sharded' is not allowed; allowed: "):
        build(s3_distribution="Sharded")


@pytest.mark.parametrize("sample", sorted(p.name for p in SAMPLE_EVENTS.glob("console-*.json")))
def test_the_console_samples_fit_the_shipped_deployment_settings(sample):
    """events/ are pasted into the console as they are: they must pass cdk.json's allow-list."""
    context = infra_settings.load_context(SAMPLE_EVENTS.parent / "cdk.json")
    environment = infra_settings.launcher_environment(
        infra_settings.from_context(context),
        bucket_name=BUCKET,
        image_uri=IMAGE_URI,
        training_role_arn=ENVIRONMENT["TRAINING_ROLE_ARN"],
        output_kms_key_arn=ENVIRONMENT["OUTPUT_KMS_KEY_ARN"],
        notifications_topic_arn=ENVIRONMENT["NOTIFICATIONS_TOPIC_ARN"],
    )
    deployed = LauncherSettings.from_environ(environment)
    body = sample_event(sample)
    launch = LaunchRequest(
        dataset=events.dataset_from_reference(body.pop("dataset"), BUCKET),
        overrides=parse_overrides(body, source=sample),
        trigger=request.TRIGGER_CONSOLE,
        identity="console#1",
        requested_at=None,
    )

    job = request.create_training_job_request(launch, deployed)

    assert job["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"].endswith("/fridge/")

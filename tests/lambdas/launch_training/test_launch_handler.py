"""The handler against the moto server: replayed events in, training jobs (or refusals) out."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace
from urllib.parse import quote_plus

import boto3
import pytest

from launch_training.handler import handler
from launch_training.settings import SettingsError
from tests.support.launcher_world import BUCKET, payload, register_image, sample_event


def trigger_event(dataset: str, sequencer: str = "0066A1B2C3D4E5F601") -> dict:
    """The events folder's S3 put, for another dataset key (URL-encoded as S3 does)."""
    event = sample_event("s3-put-trigger.json")
    obj = event["Records"][0]["s3"]["object"]
    obj["key"] = quote_plus(f"datasets/{dataset}/_launch.json", safe="/")
    obj["sequencer"] = sequencer
    return event


def only(response: dict) -> dict:
    [result] = response["results"]
    return result


# ---- console requests ---------------------------------------------------------------------


def test_minimal_console_event_launches_one_job(deployed):
    deployed.put_dataset("fridge", trigger=None)

    result = handler(sample_event("console-minimal.json"), None)

    assert result["status"] == "launched"
    assert deployed.jobs() == [result["job_name"]]
    job = deployed.job(result["job_name"])
    assert (
        job["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"]
        == f"s3://{BUCKET}/datasets/fridge/"
    )
    assert job["EnableManagedSpotTraining"] is True
    wait, runtime = (
        job["StoppingCondition"]["MaxWaitTimeInSeconds"],
        job["StoppingCondition"]["MaxRuntimeInSeconds"],
    )
    assert wait > runtime
    tags = boto3.client("sagemaker").list_tags(ResourceArn=job["TrainingJobArn"])["Tags"]
    assert {t["Key"]: t["Value"] for t in tags}["trigger"] == "console"


def test_console_event_with_overrides_launches_what_it_asks(deployed):
    deployed.put_dataset("fridge", trigger=None)

    result = handler(sample_event("console-overrides.json"), None)

    assert result["status"] == "launched"
    job = deployed.job(result["job_name"])
    assert job["AlgorithmSpecification"]["TrainingInputMode"] == "FastFile"
    assert job["HyperParameters"]["model"] == "efficientdet"
    assert job["HyperParameters"]["epochs"] == "30"
    assert job["StoppingCondition"]["MaxRuntimeInSeconds"] == 4 * 3600


def test_a_retried_console_invocation_starts_no_second_job(deployed):
    """Lambda retries an asynchronous invocation with the same request id: same job name."""
    deployed.put_dataset("fridge", trigger=None)
    context = SimpleNamespace(aws_request_id="8f5bd5e8-1c87-4c14-a2b0-5b4c0f0e0c11")
    other_context = SimpleNamespace(aws_request_id="0d7c31d6-97a4-4c51-9a6f-52f0c4d0aa01")

    first = handler({"dataset": "fridge"}, context)
    retried = handler({"dataset": "fridge"}, context)
    other = handler({"dataset": "fridge"}, other_context)

    assert (first["status"], retried["status"], other["status"]) == (
        "launched",
        "already_launched",
        "launched",
    )
    assert retried["job_name"] == first["job_name"]
    assert len(deployed.jobs()) == 2


def test_a_client_token_makes_a_request_idempotent_across_invocations(deployed):
    """detrain launch sends a client token: any retry of that request, whatever its request id,
    answers already_launched; another request under the same token is a job of its own."""
    deployed.put_dataset("fridge", trigger=None)
    request = {"dataset": "fridge", "client_token": "5b0c9a52e7d14f0e9c3f2a1b0c9d8e7f"}

    first = handler(request, SimpleNamespace(aws_request_id="a"))
    retried = handler(dict(request), SimpleNamespace(aws_request_id="b"))
    different = handler({**request, "spot": False}, SimpleNamespace(aws_request_id="c"))

    assert [r["status"] for r in (first, retried, different)] == [
        "launched",
        "already_launched",
        "launched",
    ]
    assert first["job_name"] == retried["job_name"] != different["job_name"]
    assert re.fullmatch(r"detrain-fridge-[0-9a-f]{12}", first["job_name"])


@pytest.mark.parametrize("token", ["", "a b", "x" * 65, 42, None, ["t"]])
def test_a_bad_client_token_is_refused_naming_it(deployed, token):
    result = handler({"dataset": "fridge", "client_token": token}, None)

    assert result["status"] == "refused"
    assert "'client_token' = " in result["reason"] and "1-64 letters" in result["reason"]


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (
            {"dataset": "fridge", "instance_type": "ml.p4d.24xlarge"},
            "'ml.p4d.24xlarge' is not allowed",
        ),
        ({"dataset": "fridge", "instance_count": 9}, "allowed: 1 to 2"),
        ({"dataset": "fridge", "max_runtime_hours": 100}, "at most 12"),
        (
            {"dataset": "fridge", "hyperparameters": {"epochs": 5000}},
            "'epochs' = 5000 is out of range",
        ),
        ({"dataset": "fridge", "hyperparameters": {"k": "v" * 300}}, "unknown hyperparameter 'k'"),
        ({"dataset": "s3://elsewhere/datasets/fridge/"}, "bucket 'elsewhere'"),
        ({"hyperparameters": {}}, "no 'dataset'"),
        ({"dataset": "fridge", "gpus": 8}, "unknown field 'gpus'"),
    ],
)
def test_refusals_are_returned_and_create_no_job(deployed, event, message, caplog):
    deployed.put_dataset("fridge", trigger=None)

    result = handler(event, None)

    assert result["status"] == "refused"
    assert deployed.jobs() == []
    assert re.search(message, result["reason"])
    assert any("refused" in r.getMessage() for r in caplog.records)


def test_missing_dataset_is_refused(deployed):
    result = handler({"dataset": "nothing-here"}, None)

    assert result["status"] == "refused"
    assert "dataset 'nothing-here' does not exist" in result["reason"]
    assert deployed.jobs() == []


def test_dataset_with_only_its_trigger_is_refused_as_empty(deployed):
    deployed.put_dataset("fridge", files=0)
    deployed.s3.put_object(
        Bucket=BUCKET, Key="datasets/fridge/images/", Body=b""
    )  # a folder marker

    result = handler(trigger_event("fridge"), None)

    assert only(result)["status"] == "refused"
    assert "dataset 'fridge' is empty" in only(result)["reason"]
    assert deployed.jobs() == []


def test_unbuilt_image_is_refused(deployed, monkeypatch):
    deployed.put_dataset("fridge")
    monkeypatch.setenv(
        "TRAINING_IMAGE_URI", "123456789012.dkr.ecr.us-east-1.amazonaws.com/detrain-training:v2"
    )

    result = handler({"dataset": "fridge"}, None)

    assert result["status"] == "refused"
    assert "detrain-training:v2 is not built yet (ImageNotFoundException)" in result["reason"]
    register_image("123456789012.dkr.ecr.us-east-1.amazonaws.com/detrain-training:v2")
    assert handler({"dataset": "fridge"}, None)["status"] == "launched"


def test_missing_repository_is_refused(deployed, monkeypatch):
    deployed.put_dataset("fridge")
    monkeypatch.setenv(
        "TRAINING_IMAGE_URI", "123456789012.dkr.ecr.us-east-1.amazonaws.com/nope:latest"
    )

    result = handler({"dataset": "fridge"}, None)

    assert "is not built yet (RepositoryNotFoundException)" in result["reason"]


# ---- uploads ------------------------------------------------------------------------------


@pytest.mark.parametrize("dataset", ["fridge", "red flowers", "a+b", "50% off", "çà 花", "x=1,y&z"])
def test_an_upload_trigger_with_any_key_launches_on_that_dataset(deployed, dataset):
    deployed.put_dataset(dataset)

    result = only(handler(trigger_event(dataset), None))

    assert result["status"] == "launched", result
    assert result["dataset_uri"] == f"s3://{BUCKET}/datasets/{dataset}/"
    job = deployed.job(result["job_name"])
    tags = boto3.client("sagemaker").list_tags(ResourceArn=job["TrainingJobArn"])["Tags"]
    assert {t["Key"]: t["Value"] for t in tags}["trigger"] == "upload"


def test_replayed_real_payload_with_unicode_key_and_overrides_in_the_trigger(deployed):
    body = {"hyperparameters": {"model": "efficientdet", "epochs": 2}, "spot": False}
    deployed.put_dataset("red flowers ç 50% a+b", trigger=json.dumps(body).encode())

    result = only(handler(payload("s3_put_versioned_unicode.json"), None))

    assert result["status"] == "launched"
    assert result["job_name"].startswith("detrain-red-flowers-50-a-b-20250602-083015-")
    job = deployed.job(result["job_name"])
    assert (
        job["HyperParameters"]["model"] == "efficientdet"
        and job["HyperParameters"]["epochs"] == "2"
    )
    assert job["EnableManagedSpotTraining"] is False


def test_moto_style_payload_launches(deployed):
    deployed.put_dataset("red flowers+ç 50%")

    assert only(handler(payload("s3_put_moto.json"), None))["status"] == "launched"


def test_duplicate_deliveries_start_one_job(deployed):
    deployed.put_dataset("fridge v2")
    event = sample_event("s3-put-trigger.json")

    results = [only(handler(event, None)) for _ in range(5)]

    assert [r["status"] for r in results] == ["launched"] + ["already_launched"] * 4
    assert {r["job_name"] for r in results} == {results[0]["job_name"]}
    assert deployed.jobs() == [results[0]["job_name"]]
    assert results[1]["job_status"] == "Completed"


def test_a_new_upload_of_the_trigger_starts_a_new_job(deployed):
    deployed.put_dataset("fridge")

    first = only(handler(trigger_event("fridge", sequencer="0066A1B2C3D4E5F601"), None))
    second = only(handler(trigger_event("fridge", sequencer="0066A1B2C3D4E5F7FF"), None))

    assert first["status"] == second["status"] == "launched"
    assert len(deployed.jobs()) == 2


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "is not valid JSON"),
        (b"[1, 2]", "holds list; write a JSON object"),
        (b'{"dataset": "other"}', "unknown field 'dataset'"),
        (b'{"hyperparameters": {"epochs": -1}}', "'epochs' = -1 is out of range"),
        (b"\xff\xfe", "is not valid JSON"),
        (b"{}" + b" " * 70_000, "is over 65536 bytes"),
    ],
)
def test_a_bad_trigger_body_is_refused_clearly(deployed, body, message):
    deployed.put_dataset("fridge", trigger=body)

    result = only(handler(trigger_event("fridge"), None))

    assert result["status"] == "refused"
    assert message in result["reason"]
    assert "s3://detrain-data-123456789012-us-east-1/datasets/fridge/_launch.json" in result[
        "reason"
    ] or ("'epochs'" in message)
    assert deployed.jobs() == []


@pytest.mark.parametrize("body", [b"", b"  \n", b"{}"])
def test_an_empty_trigger_body_means_the_defaults(deployed, body):
    deployed.put_dataset("fridge", trigger=body)

    assert only(handler(trigger_event("fridge"), None))["status"] == "launched"


def test_a_trigger_deleted_before_delivery_is_refused(deployed):
    deployed.put_dataset("fridge", trigger=None)

    result = only(handler(trigger_event("fridge"), None))

    assert "no longer exists" in result["reason"]


def test_other_keys_buckets_and_test_events_are_skipped_without_a_job(deployed, caplog):
    deployed.put_dataset("fridge v2")

    skipped = handler(payload("s3_records_not_triggers.json"), None)["results"]
    test_event = handler(payload("s3_test_event.json"), None)["results"]

    assert [r["status"] for r in skipped + test_event] == ["skipped"] * 5
    assert f"not the data bucket '{BUCKET}'" in skipped[0]["reason"]
    assert "is not datasets/<name>/_launch.json" in skipped[1]["reason"]
    assert deployed.jobs() == []
    assert sum("skipped" in r.getMessage() for r in caplog.records) == 5


def test_a_broken_deployment_fails_loudly_naming_the_variable(aws, launcher_env, monkeypatch):
    monkeypatch.delenv("DATA_BUCKET")

    with pytest.raises(SettingsError, match="DATA_BUCKET is not set"):
        handler({"dataset": "fridge"}, None)


# ---- S3 events through EventBridge ----------------------------------------------------------


def test_an_eventbridge_trigger_launches_and_its_redelivery_does_not(deployed):
    deployed.put_dataset("red flowers")
    event = payload("eventbridge_trigger.json")

    results = [only(handler(event, None)) for _ in range(3)]

    assert [r["status"] for r in results] == ["launched", "already_launched", "already_launched"]
    assert results[0]["job_name"].startswith("detrain-red-flowers-20250602-083015-")
    assert deployed.jobs() == [results[0]["job_name"]]
    job = deployed.job(results[0]["job_name"])
    tags = boto3.client("sagemaker").list_tags(ResourceArn=job["TrainingJobArn"])["Tags"]
    assert {t["Key"]: t["Value"] for t in tags}["trigger"] == "upload"


def test_an_eventbridge_event_for_another_key_is_skipped(deployed):
    event = payload("eventbridge_trigger.json")
    event["detail"]["object"]["key"] = "datasets/red flowers/images/0.jpg"

    assert only(handler(event, None))["status"] == "skipped"
    assert deployed.jobs() == []

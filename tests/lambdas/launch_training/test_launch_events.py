"""Event parsing: real S3 payloads replayed, console requests, dataset references (pure)."""

from __future__ import annotations

import pytest

from launch_training import events
from launch_training.events import ConsoleRequest, ObjectCreated, Refused, Skipped
from tests.support.launcher_world import BUCKET, payload, sample_event


def test_s3_put_key_is_decoded_spaces_plus_percent_unicode():
    [record] = events.parse(payload("s3_put_versioned_unicode.json"))

    assert isinstance(record, ObjectCreated)
    assert record.key == "datasets/red flowers ç 50% a+b/_launch.json"
    assert events.trigger_dataset(record.key) == "red flowers ç 50% a+b"
    assert record.version_id == "3HL4kqtJvjVBH40Nrjfkd"
    assert record.event_time.isoformat() == "2025-06-02T08:30:15.123000+00:00"


def test_moto_delivery_with_encoded_slashes_and_no_sequencer_decodes_the_same_way():
    [record] = events.parse(payload("s3_put_moto.json"))

    assert record.key == "datasets/red flowers+ç 50%/_launch.json"
    assert record.sequencer is None and record.version_id is None
    assert record.identity.endswith("#99914b932bd37a50b983c5e7c90ae93b")  # falls back to the ETag


def test_sample_s3_event_of_events_folder_is_a_trigger():
    [record] = events.parse(sample_event("s3-put-trigger.json"))

    assert record.bucket == BUCKET
    assert events.trigger_dataset(record.key) == "fridge v2"


def test_identity_prefers_version_then_sequencer_and_is_stable_for_a_redelivery():
    event = payload("s3_put_versioned_unicode.json")
    [first], [again] = events.parse(event), events.parse(event)

    assert first.identity == again.identity
    assert first.identity.endswith("#3HL4kqtJvjVBH40Nrjfkd")
    del event["Records"][0]["s3"]["object"]["versionId"]
    [unversioned] = events.parse(event)
    assert unversioned.identity.endswith("#0066A1B2C3D4E5F6A2")


def test_a_null_version_does_not_make_two_uploads_one():
    event = payload("s3_put_versioned_unicode.json")
    obj = event["Records"][0]["s3"]["object"]
    obj["versionId"] = "null"  # versioning suspended
    [first] = events.parse(event)
    obj["sequencer"] = "0066A1B2C3D4E5F6FF"
    [second] = events.parse(event)

    assert first.version_id is None
    assert first.identity != second.identity


def test_s3_test_event_is_skipped():
    [record] = events.parse(payload("s3_test_event.json"))

    assert isinstance(record, Skipped)
    assert "s3:TestEvent" in record.reason


def test_removed_objects_are_skipped_and_other_records_still_parse():
    records = events.parse(payload("s3_records_not_triggers.json"))

    assert [type(r) for r in records] == [ObjectCreated, ObjectCreated, ObjectCreated, Skipped]
    assert "ObjectRemoved:Delete" in records[3].reason


@pytest.mark.parametrize(
    "record",
    [{"eventSource": "aws:sqs"}, {"eventSource": "aws:s3", "eventName": "ObjectCreated:Put"}, 7],
)
def test_foreign_or_malformed_records_are_skipped_not_raised(record):
    [parsed] = events.parse({"Records": [record]})

    assert isinstance(parsed, Skipped)


@pytest.mark.parametrize(
    ("key", "dataset"),
    [
        ("datasets/fridge/_launch.json", "fridge"),
        ("datasets/red flowers ç/_launch.json", "red flowers ç"),
        ("datasets/fridge/images/_launch.json", None),
        ("datasets/fridge/launch.json", None),
        ("datasets//_launch.json", None),
        ("datasets/../_launch.json", None),
        ("other/fridge/_launch.json", None),
        ("datasets/_launch.json", None),
    ],
)
def test_trigger_dataset(key, dataset):
    assert events.trigger_dataset(key) == dataset


def test_console_request_is_passed_through():
    parsed = events.parse(sample_event("console-minimal.json"))

    assert parsed == ConsoleRequest({"dataset": "fridge"})


@pytest.mark.parametrize("event", [[], "fridge", None, 3])
def test_an_event_that_is_not_an_object_is_refused_with_an_example(event):
    with pytest.raises(
        Refused, match=r"not a JSON object; supported events: .*EventBridge.*dataset"
    ):
        events.parse(event)


@pytest.mark.parametrize(
    "reference",
    [
        "fridge",
        "fridge/",
        "datasets/fridge",
        "datasets/fridge/",
        f"s3://{BUCKET}/datasets/fridge/",
        f"s3://{BUCKET}/datasets/fridge",
        "  fridge ",
    ],
)
def test_dataset_reference_forms(reference):
    assert events.dataset_from_reference(reference, BUCKET) == "fridge"


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("s3://other-bucket/datasets/fridge/", "bucket 'other-bucket'.*data bucket"),
        (f"s3://{BUCKET}/models/fridge/", "not under datasets/"),
        ("datasets/fridge/images/", "not allowed.*one folder name"),
        ("", "is not a dataset"),
        (42, "is not a dataset"),
        ("..", "not allowed"),
        ("x" * 201, "not allowed"),
    ],
)
def test_bad_dataset_references_are_refused_naming_the_value(reference, message):
    with pytest.raises(Refused, match=message):
        events.dataset_from_reference(reference, BUCKET)


# ---- S3 events through EventBridge ------------------------------------------------------


def test_eventbridge_object_created_as_documented_by_s3_is_read():
    [record] = events.parse(payload("eventbridge_object_created_docs.json"))

    assert isinstance(record, ObjectCreated)
    assert (record.bucket, record.key) == ("amzn-s3-demo-bucket1", "example-key")
    assert record.version_id == "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e"
    assert record.event_time.isoformat() == "2021-11-12T00:00:00+00:00"
    assert (
        record.identity == "s3://amzn-s3-demo-bucket1/example-key#IYV3p45BT0ac8hjHg1houSdS1a.Mro8e"
    )


def test_eventbridge_keys_are_taken_as_written_not_url_decoded():
    [record] = events.parse(payload("eventbridge_trigger.json"))

    assert record.key == "datasets/red flowers/_launch.json"
    assert events.trigger_dataset(record.key) == "red flowers"
    assert record.identity.endswith("#00683D61E7A1B2C3D4")  # no version: the sequencer


def test_other_eventbridge_s3_events_are_skipped():
    [record] = events.parse(payload("eventbridge_object_deleted.json"))

    assert isinstance(record, Skipped)
    assert "'Object Deleted' is not 'Object Created'" in record.reason


def test_eventbridge_events_of_other_services_are_refused_naming_the_supported_shapes():
    scheduled = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}

    with pytest.raises(Refused, match=r"'aws.events'.*supported events: an S3 notification"):
        events.parse(scheduled)


@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01T00:00:00+05:00",
        "9999-12-31T23:59:59-05:00",
        "yesterday",
        None,
        1717317015,
        {"t": 1},
    ],
)
def test_an_unreadable_event_time_is_a_fixed_time_so_a_redelivery_keeps_its_name(value):
    event = payload("s3_put_versioned_unicode.json")
    event["Records"][0]["eventTime"] = value

    [record] = events.parse(event)

    assert record.event_time == events.UNKNOWN_TIME


@pytest.mark.parametrize("key", [12345, 1.5, None, ["a"], {"k": "v"}, True, ""])
def test_an_object_key_that_is_not_text_is_skipped(key):
    event = payload("s3_put_versioned_unicode.json")
    event["Records"][0]["s3"]["object"]["key"] = key
    bridged = payload("eventbridge_trigger.json")
    bridged["detail"]["object"]["key"] = key

    [record], [bridged_record] = events.parse(event), events.parse(bridged)

    assert isinstance(record, Skipped) and "malformed S3 record" in record.reason
    assert isinstance(bridged_record, Skipped) and "malformed EventBridge" in bridged_record.reason

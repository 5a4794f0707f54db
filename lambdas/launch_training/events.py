"""What can invoke the launcher, as typed read-only values.

Three shapes are supported (SUPPORTED_SHAPES says so in every refusal of another shape):

- an S3 notification: ``{"Records": [{"eventSource": "aws:s3", "s3": {...}}]}`` whose object
  keys are URL-encoded with spaces as ``+``, or the ``s3:TestEvent`` S3 sends when the
  notification is configured
  (https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html);
- an S3 event delivered through EventBridge: ``{"source": "aws.s3", "detail-type": "Object
  Created", "detail": {"bucket": {"name": ...}, "object": {"key": ...}}}``, whose key is not
  encoded (https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html);
- a console request (the Lambda console's Test, or ``detrain launch``): a JSON object with a
  ``dataset`` and optional overrides (see request.py).

Parsing never raises anything but Refused, whatever the payload. Records that are not the
upload of a trigger object in the data bucket are skipped with a reason, never raised: S3
redelivers events that fail.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from contract.names import DATASETS_PREFIX, TRIGGER_FILENAME

MAX_DATASET_NAME_CHARS = 200
EVENTBRIDGE_OBJECT_CREATED = "Object Created"
SUPPORTED_SHAPES = (
    'supported events: an S3 notification ({"Records": [{"eventSource": "aws:s3", ...}]}), '
    'an S3 event through EventBridge ({"source": "aws.s3", "detail-type": "Object Created", '
    '...}), or a console request ({"dataset": "fridge", ...overrides})'
)
# The time used when an event's own time is missing or unreadable: fixed, so a redelivery of
# the same event still gets the same job name.
UNKNOWN_TIME = datetime(1970, 1, 1, tzinfo=UTC)


class Refused(ValueError):
    """The request cannot start a job; the message names the bad value and what is allowed."""


@dataclass(frozen=True)
class ObjectCreated:
    """One S3 ObjectCreated record, its key decoded."""

    bucket: str
    key: str
    event_name: str
    event_time: datetime
    version_id: str | None = None
    sequencer: str | None = None
    etag: str | None = None

    @property
    def identity(self) -> str:
        """What makes this upload unique: a redelivery of the same event has the same identity."""
        revision = self.version_id or self.sequencer or self.etag or self.event_time.isoformat()
        return f"s3://{self.bucket}/{self.key}#{revision}"


@dataclass(frozen=True)
class Skipped:
    """A record the launcher ignores, and why."""

    reason: str


@dataclass(frozen=True)
class ConsoleRequest:
    """A JSON object invoked directly (console Test, CLI)."""

    body: Mapping[str, Any]


def parse(event: Any) -> ConsoleRequest | list[ObjectCreated | Skipped]:
    """An invocation payload -> a console request, or the records of an S3 event; else Refused."""
    if not isinstance(event, Mapping):
        raise Refused(f"the event is {type(event).__name__}, not a JSON object; {SUPPORTED_SHAPES}")
    if event.get("Event") == "s3:TestEvent":
        return [Skipped(f"s3:TestEvent for bucket {_text(event.get('Bucket'))!r}")]
    if "Records" in event:
        records = event["Records"]
        if not isinstance(records, list):
            return [Skipped("'Records' is not a list")]
        return [_record(record) for record in records]
    if "detail-type" in event or "detail" in event:
        return [_eventbridge(event)]
    if "dataset" not in event:
        fields = ", ".join(repr(str(k)) for k in list(event)[:5]) or "no fields"
        raise Refused(
            f"the event ({fields}) has no 'dataset' and is no S3 event; {SUPPORTED_SHAPES}"
        )
    return ConsoleRequest(event)


def _record(record: Any) -> ObjectCreated | Skipped:
    if not isinstance(record, Mapping):
        return Skipped(f"record is not an object: {record!r:.80}")
    source = record.get("eventSource")
    name = _text(record.get("eventName")) or ""
    if source != "aws:s3":
        return Skipped(f"record from {source!r:.80}, not aws:s3")
    if not name.startswith("ObjectCreated:"):
        return Skipped(f"{name!r:.80} is not an ObjectCreated event")
    s3 = record.get("s3")
    obj = s3.get("object") if isinstance(s3, Mapping) else None
    bucket = s3.get("bucket") if isinstance(s3, Mapping) else None
    bucket_name = _text(bucket.get("name")) if isinstance(bucket, Mapping) else None
    key = obj.get("key") if isinstance(obj, Mapping) else None
    if not bucket_name or not isinstance(key, str) or not key:
        return Skipped(f"malformed S3 record (no s3.bucket.name or s3.object.key): {record!r:.200}")
    return ObjectCreated(
        bucket=bucket_name,
        key=unquote_plus(key),
        event_name=name,
        event_time=_time(record.get("eventTime")),
        version_id=_version(obj.get("versionId")),
        sequencer=_text(obj.get("sequencer")),
        etag=_text(obj.get("eTag")),
    )


def _eventbridge(event: Mapping[str, Any]) -> ObjectCreated | Skipped:
    """An S3 event through EventBridge: one object, its key as stored (not URL-encoded)."""
    kind = _text(event.get("detail-type"))
    if event.get("source") != "aws.s3":
        raise Refused(
            f"an EventBridge event from {event.get('source')!r:.80} ({kind!r:.80}) cannot start "
            f"a job; {SUPPORTED_SHAPES}"
        )
    if kind != EVENTBRIDGE_OBJECT_CREATED:
        return Skipped(f"EventBridge {kind!r:.80} is not {EVENTBRIDGE_OBJECT_CREATED!r}")
    detail = event.get("detail")
    obj = detail.get("object") if isinstance(detail, Mapping) else None
    bucket = detail.get("bucket") if isinstance(detail, Mapping) else None
    bucket_name = _text(bucket.get("name")) if isinstance(bucket, Mapping) else None
    key = obj.get("key") if isinstance(obj, Mapping) else None
    if not bucket_name or not isinstance(key, str) or not key:
        return Skipped(
            f"malformed EventBridge S3 event (no detail.bucket.name or detail.object.key): "
            f"{event!r:.200}"
        )
    return ObjectCreated(
        bucket=bucket_name,
        key=key,
        event_name=f"EventBridge:{kind}",
        event_time=_time(event.get("time")),
        version_id=_version(obj.get("version-id")),
        sequencer=_text(obj.get("sequencer")),
        etag=_text(obj.get("etag")),
    )


def _text(value: Any) -> str | None:
    """A string field as text; numbers written as text; anything else (or empty) None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (str, int, float)):
        return str(value) or None
    return None


def _version(value: Any) -> str | None:
    """An object's version; None when unversioned. An object stored while versioning is
    suspended has the version "null": every upload has it, so it cannot tell two apart."""
    text = _text(value)
    return None if text in (None, "null") else text


def _time(value: Any) -> datetime:
    """eventTime as S3 writes it (``1970-01-01T00:00:00.000Z``); UNKNOWN_TIME if absent or
    unreadable (a year 1 or 9999 time with an offset is outside what UTC can hold)."""
    if not isinstance(value, str):
        return UNKNOWN_TIME
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return UNKNOWN_TIME


def trigger_dataset(key: str) -> str | None:
    """``datasets/<name>/_launch.json`` -> ``<name>``; None for any other key."""
    parts = key.split("/")
    if len(parts) != 3 or f"{parts[0]}/" != DATASETS_PREFIX or parts[2] != TRIGGER_FILENAME:
        return None
    try:
        return check_dataset_name(parts[1])
    except Refused:
        return None


def check_dataset_name(name: str) -> str:
    """A dataset name is one path segment under datasets/ (any characters but '/')."""
    if (
        not name
        or name in (".", "..")
        or "/" in name
        or len(name) > MAX_DATASET_NAME_CHARS
        or not name.isprintable()
    ):
        raise Refused(
            f"dataset name {name!r} is not allowed; allowed: one folder name under "
            f"{DATASETS_PREFIX} (1-{MAX_DATASET_NAME_CHARS} printable characters, no '/')"
        )
    return name


def dataset_from_reference(reference: Any, bucket: str) -> str:
    """A console request's ``dataset``: ``name``, ``datasets/name/`` or ``s3://bucket/datasets/name/``."""
    forms = f"'<name>', '{DATASETS_PREFIX}<name>/' or 's3://{bucket}/{DATASETS_PREFIX}<name>/'"
    if not isinstance(reference, str) or not reference.strip():
        raise Refused(f"'dataset' = {reference!r} is not a dataset; allowed: {forms}")
    path = reference.strip()
    if path.startswith("s3://"):
        given_bucket, _, path = path[len("s3://") :].partition("/")
        if given_bucket != bucket:
            raise Refused(
                f"'dataset' = {reference!r} is in bucket {given_bucket!r}; "
                f"datasets must be in the data bucket {bucket!r}"
            )
        if not path.startswith(DATASETS_PREFIX):
            raise Refused(
                f"'dataset' = {reference!r} is not under {DATASETS_PREFIX}; allowed: {forms}"
            )
    if path.startswith(DATASETS_PREFIX):
        path = path[len(DATASETS_PREFIX) :]
    path = path.removesuffix("/")
    try:
        return check_dataset_name(path)
    except Refused as error:
        raise Refused(f"'dataset' = {reference!r}: {error}; write it as {forms}") from None

"""What can invoke the launcher, as typed read-only values.

Two shapes arrive (https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html):

- an S3 notification: ``{"Records": [{"eventSource": "aws:s3", "s3": {...}}]}`` whose object
  keys are URL-encoded with spaces as ``+``, or the ``s3:TestEvent`` S3 sends when the
  notification is configured;
- a console request (the Lambda console's Test, or ``detrain launch``): a JSON object with a
  ``dataset`` and optional overrides (see request.py).

Records that are not the upload of a trigger object in the data bucket are skipped with a
reason, never raised: S3 redelivers events that fail.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from launch_training.names import DATASETS_PREFIX, TRIGGER_FILENAME

MAX_DATASET_NAME_CHARS = 200


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
    """An invocation payload -> a console request, or the records of an S3 notification."""
    if not isinstance(event, Mapping):
        raise Refused(
            f"the event must be a JSON object, not {type(event).__name__}; "
            'e.g. {"dataset": "fridge"}'
        )
    if event.get("Event") == "s3:TestEvent":
        return [Skipped(f"s3:TestEvent for bucket {event.get('Bucket')!r}")]
    if "Records" in event:
        records = event["Records"]
        if not isinstance(records, list):
            return [Skipped("'Records' is not a list")]
        return [_record(record) for record in records]
    return ConsoleRequest(event)


def _record(record: Any) -> ObjectCreated | Skipped:
    if not isinstance(record, Mapping):
        return Skipped(f"record is not an object: {record!r:.80}")
    source = record.get("eventSource")
    name = str(record.get("eventName", ""))
    if source != "aws:s3":
        return Skipped(f"record from {source!r}, not aws:s3")
    if not name.startswith("ObjectCreated:"):
        return Skipped(f"{name!r} is not an ObjectCreated event")
    try:
        s3 = record["s3"]
        obj = s3["object"]
        return ObjectCreated(
            bucket=s3["bucket"]["name"],
            key=unquote_plus(obj["key"]),
            event_name=name,
            event_time=_time(record.get("eventTime")),
            version_id=_version(obj.get("versionId")),
            sequencer=obj.get("sequencer") or None,
            etag=obj.get("eTag") or None,
        )
    except (KeyError, TypeError):
        return Skipped(f"malformed S3 record: {record!r:.200}")


def _version(value: Any) -> str | None:
    """An object's version; None when unversioned. An object stored while versioning is
    suspended has the version "null": every upload has it, so it cannot tell two apart."""
    return None if value in (None, "", "null") else str(value)


def _time(value: Any) -> datetime:
    """eventTime as S3 writes it (``1970-01-01T00:00:00.000Z``); now if absent or unreadable."""
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return datetime.now(UTC)


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

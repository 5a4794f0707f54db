"""Upload a local dataset folder to ``datasets/<name>/``, then write the trigger object last.

The trigger (``datasets/<name>/_launch.json``) is what starts training, so it is written
only after every file is in place; its body is the overrides (``{}`` for the defaults).
Files already in the bucket with the same size, not modified since, are skipped (a re-run resumes);
hidden files (any path part starting with ``.``) are never uploaded.

One s3transfer TransferManager moves every file, large files in parts, with as many request
threads as the client has pooled connections: a request never waits for, or discards, a
connection (urllib3's "Connection pool is full"), and no thread pool runs inside another.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from s3transfer.manager import TransferConfig, TransferManager
from s3transfer.subscribers import BaseSubscriber
from tqdm import tqdm

from contract.hyperparameters import HyperparameterError, from_values
from contract.names import DATASETS_PREFIX, TRIGGER_FILENAME, JobNameError, prefixed_job_name
from launch_training.events import Refused, check_dataset_name
from launch_training.request import parse_overrides

log = logging.getLogger(__name__)

CONNECTIONS = 10  # botocore's and the AWS CLI's default (max_concurrent_requests)
PART_BYTES = 8 * 1024 * 1024  # multipart threshold and part size: boto3's and the AWS CLI's


def client_config() -> Config:
    """The S3 client's settings for an upload: the connection pool the transfers are sized to."""
    return Config(max_pool_connections=CONNECTIONS)


class UploadError(ValueError):
    """The dataset name, folder or overrides cannot be uploaded; the message says why."""


@dataclass(frozen=True)
class UploadResult:
    bucket: str
    prefix: str
    uploaded: int
    skipped: int
    deleted: int
    bytes_uploaded: int
    trigger_key: str | None


def check_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The checks the launcher makes without its deployment settings: types, hyperparameters,
    the job name's rule."""
    try:
        parsed = parse_overrides(overrides, source="the overrides")
        from_values(parsed.hyperparameters)
        if parsed.job_name:
            prefixed_job_name(parsed.job_name)
    except (Refused, HyperparameterError, JobNameError) as error:
        raise UploadError(str(error)) from None
    return dict(overrides)


def check_name(name: str) -> None:
    """The launcher's rule for a dataset name (one folder under datasets/)."""
    try:
        check_dataset_name(name)
    except Refused as error:
        raise UploadError(str(error)) from None


def local_files(folder: Path) -> dict[str, Path]:
    """Relative POSIX path -> file, without hidden files and without a top-level trigger."""
    files = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if not path.is_file() or any(part.startswith(".") for part in relative.parts):
            continue
        if relative.as_posix() == TRIGGER_FILENAME:
            log.warning("not uploading %s: the trigger is written from the overrides", path)
            continue
        files[relative.as_posix()] = path
    return files


def _remote_objects(s3, bucket: str, prefix: str) -> dict[str, tuple[int, float]]:
    objects = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            objects[item["Key"]] = (item["Size"], item["LastModified"].timestamp())
    return objects


def _unchanged(path: Path, remote: tuple[int, float] | None) -> bool:
    """`aws s3 sync`'s rule: same size and not modified since the upload.

    (ETags are no checksum here: the bucket is KMS-encrypted, and SSE-KMS ETags are not MD5s.)
    """
    if remote is None:
        return False
    stat = path.stat()
    return stat.st_size == remote[0] and stat.st_mtime <= remote[1]


def upload_dataset(
    bucket: str,
    name: str,
    folder: Path | str,
    overrides: Mapping[str, Any] | None = None,
    *,
    s3: Any = None,
    trigger: bool = True,
    delete: bool = False,
    progress: bool = True,
    part_bytes: int = PART_BYTES,
) -> UploadResult:
    """Sync ``folder`` to ``s3://bucket/datasets/<name>/``; then write the trigger (if `trigger`).

    `delete` removes objects under the prefix that are not in the folder. Files of `part_bytes`
    or more go in parts of that size (S3's minimum part is 5 MiB). Raises UploadError for a bad
    name, folder or overrides, before anything is written.
    """
    check_name(name)
    folder = Path(folder)
    if not folder.is_dir():
        raise UploadError(f"dataset folder {str(folder)!r} is not a directory")
    body = json.dumps(check_overrides(overrides or {}), indent=2).encode()
    files = local_files(folder)
    if not files:
        raise UploadError(f"dataset folder {str(folder)!r} holds no files to upload")
    s3 = s3 or boto3.client("s3", config=client_config())
    prefix = f"{DATASETS_PREFIX}{name}/"
    trigger_key = prefix + TRIGGER_FILENAME
    remote = _remote_objects(s3, bucket, prefix)
    todo = {
        rel: path for rel, path in files.items() if not _unchanged(path, remote.get(prefix + rel))
    }
    total = sum(path.stat().st_size for path in todo.values())
    with tqdm(
        total=total, unit="B", unit_scale=True, desc=f"upload {name}", disable=not progress
    ) as bar:
        lock = threading.Lock()

        def advance(count: int) -> None:
            with lock:
                bar.update(count)

        keys = {prefix + rel: path for rel, path in todo.items()}
        _transfer(s3, bucket, keys, part_bytes, advance)
    stale = [k for k in remote if k != trigger_key and k[len(prefix) :] not in files]
    if delete:
        for start in range(0, len(stale), 1000):
            batch = [{"Key": key} for key in stale[start : start + 1000]]
            s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
    if trigger:
        s3.put_object(Bucket=bucket, Key=trigger_key, Body=body, ContentType="application/json")
    log.info(
        "s3://%s/%s: %d uploaded, %d unchanged%s",
        bucket,
        prefix,
        len(todo),
        len(files) - len(todo),
        f", {len(stale)} deleted" if delete and stale else "",
    )
    return UploadResult(
        bucket=bucket,
        prefix=prefix,
        uploaded=len(todo),
        skipped=len(files) - len(todo),
        deleted=len(stale) if delete else 0,
        bytes_uploaded=total,
        trigger_key=trigger_key if trigger else None,
    )


class _Progress(BaseSubscriber):
    def __init__(self, advance: Callable[[int], None]) -> None:
        self._advance = advance

    def on_progress(self, bytes_transferred: int, **kwargs) -> None:
        self._advance(bytes_transferred)


def _transfer(
    s3, bucket: str, files: Mapping[str, Path], part_bytes: int, advance: Callable[[int], None]
) -> None:
    """Upload ``key -> file`` with one TransferManager, its request threads one per pooled
    connection of `s3`; raises the first failure (the manager cancels the rest)."""
    config = TransferConfig(
        max_request_concurrency=s3.meta.config.max_pool_connections,
        multipart_threshold=part_bytes,
        multipart_chunksize=part_bytes,
    )
    progress = [_Progress(advance)]
    with TransferManager(s3, config) as manager:
        futures = [
            manager.upload(str(path), bucket, key, subscribers=progress)
            for key, path in files.items()
        ]
        for future in futures:
            future.result()

"""Bring a SageMaker Ground Truth labelling job's output into a dataset prefix.

A bounding-box job writes an output manifest (JSON Lines) whose ``source-ref`` values point at
the images where they were labelled, often another bucket. The trainer reads one
self-contained channel, so ``detrain upload NAME --ground-truth MANIFEST`` copies every
referenced image server side (CopyObject: no download) to ``datasets/NAME/<its key>``, then
writes the manifest beside them; the trainer finds each image by its key
(trainer/formats/ground_truth.py). The training role never needs access to the labelling
bucket, and the File and FastFile modes the platform uses both work: SageMaker's own
augmented-manifest input "can only be used if the Channel's input mode is Pipe" (the
CreateTrainingJob API reference, S3DataSource.S3DataType). Images already copied with the
same size are skipped, so a re-run resumes; the trigger is written last, as for a folder
upload.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from contract.names import DATASETS_PREFIX, TRIGGER_FILENAME

log = logging.getLogger(__name__)


class ManifestError(ValueError):
    """The manifest cannot be read or names no image in S3; the message says where."""


@dataclass(frozen=True)
class ImportResult:
    prefix: str
    manifest_key: str
    copied: int
    skipped: int
    trigger_key: str | None


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def read_manifest(source: str, s3: Any) -> tuple[str, list[dict]]:
    """(file name, lines) of a manifest given as ``s3://bucket/key`` or a local path."""
    if source.startswith("s3://"):
        bucket, key = _split(source)
        try:
            text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
        except s3.exceptions.NoSuchKey:
            raise ManifestError(f"manifest {source!r} does not exist") from None
        name = PurePosixPath(key).name
    else:
        path = Path(source)
        if not path.is_file():
            raise ManifestError(f"manifest {source!r} is not a file")
        text, name = path.read_text(encoding="utf-8"), path.name
    lines = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as error:
            raise ManifestError(f"{name} line {number} is not JSON: {error}") from None
        ref = entry.get("source-ref") if isinstance(entry, dict) else None
        if not isinstance(ref, str) or not ref.startswith("s3://") or not _split(ref)[1]:
            raise ManifestError(
                f"{name} line {number}: 'source-ref' = {ref!r} is not an S3 object URI; "
                "allowed: s3://bucket/key (a Ground Truth output manifest)"
            )
        lines.append(entry)
    if not lines:
        raise ManifestError(f"manifest {source!r} has no lines")
    return name if name.endswith(".manifest") else f"{name}.manifest", lines


def import_manifest(
    bucket: str,
    name: str,
    source: str,
    *,
    s3: Any,
    overrides_body: bytes,
    trigger: bool = True,
) -> ImportResult:
    """Copy the manifest's images into ``datasets/<name>/``, write the manifest, then the
    trigger. ``name`` is already checked by the caller. The copies run on as many threads as
    the client has pooled connections, so none waits for (or warns about) a full pool."""
    manifest_name, lines = read_manifest(source, s3)
    prefix = f"{DATASETS_PREFIX}{name}/"
    present = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            present[item["Key"]] = item["Size"]
    sources = sorted({_split(line["source-ref"]) for line in lines})

    def copy(source_object: tuple[str, str]) -> bool:
        source_bucket, key = source_object
        target = prefix + key
        if target in present:
            size = s3.head_object(Bucket=source_bucket, Key=key)["ContentLength"]
            if size == present[target]:
                return False
        s3.copy_object(Bucket=bucket, Key=target, CopySource={"Bucket": source_bucket, "Key": key})
        return True

    with ThreadPoolExecutor(max_workers=s3.meta.config.max_pool_connections) as pool:
        copied = sum(pool.map(copy, sources))
    manifest_key = prefix + manifest_name
    body = "".join(json.dumps(line) + "\n" for line in lines).encode()
    s3.put_object(Bucket=bucket, Key=manifest_key, Body=body, ContentType="application/jsonlines")
    trigger_key = prefix + TRIGGER_FILENAME
    if trigger:
        s3.put_object(
            Bucket=bucket, Key=trigger_key, Body=overrides_body, ContentType="application/json"
        )
    log.info(
        "s3://%s/%s: %d images copied, %d unchanged, manifest %s",
        bucket,
        prefix,
        copied,
        len(sources) - copied,
        manifest_name,
    )
    return ImportResult(
        prefix, manifest_key, copied, len(sources) - copied, trigger_key if trigger else None
    )

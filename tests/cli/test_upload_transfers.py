"""detrain upload's transfers, against the moto server: large files go in parts through one
transfer manager sized to the client's connection pool, so urllib3 never has to discard a
connection ("Connection pool is full")."""

from __future__ import annotations

import logging
import os

import boto3
import pytest
from botocore.config import Config

from detrain.upload import upload_dataset

MIB = 1024 * 1024
PART_BYTES = 5 * MIB  # S3's smallest part: files over it go in parts
FILES = 6
FILE_BYTES = 2 * PART_BYTES + MIB  # three parts each


@pytest.fixture
def large_files(tmp_path):
    folder = tmp_path / "large"
    folder.mkdir()
    for index in range(FILES):
        (folder / f"shard-{index}.bin").write_bytes(os.urandom(FILE_BYTES))
    return folder


@pytest.mark.parametrize("pool", [None, 3], ids=["default-client", "small-pool-client"])
def test_large_files_upload_in_parts_without_a_full_connection_pool(aws, large_files, caplog, pool):
    s3 = boto3.client("s3", config=Config(max_pool_connections=pool)) if pool else None
    boto3.client("s3").create_bucket(Bucket="data")
    caplog.set_level(logging.WARNING, logger="urllib3.connectionpool")

    result = upload_dataset(
        "data", "shards", large_files, s3=s3, trigger=False, progress=False, part_bytes=PART_BYTES
    )

    full = [r.getMessage() for r in caplog.records if r.name == "urllib3.connectionpool"]
    assert full == []
    assert result.uploaded == FILES and result.bytes_uploaded == FILES * FILE_BYTES
    listed = boto3.client("s3").list_objects_v2(Bucket="data", Prefix=result.prefix)["Contents"]
    assert {item["Size"] for item in listed} == {FILE_BYTES}
    assert {item["ETag"].strip('"').split("-")[-1] for item in listed} == {"3"}  # 3 parts

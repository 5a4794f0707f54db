"""Moving a job's data the way SageMaker does, for ``s3://`` and ``file://`` locations.

S3 goes through boto3 (the emulator when AWS_ENDPOINT_URL is set); ``file://`` is a
folder on this machine, used by ``detrain local-train``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse


class StorageError(RuntimeError):
    """A location could not be read or written; the message names it."""


def split_s3(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise StorageError(f"{uri!r} is not an s3:// URI; expected s3://<bucket>/<key>")
    return parsed.netloc, parsed.path.lstrip("/")


def _local_path(uri: str) -> Path:
    parsed = urlparse(uri)
    return Path(unquote(parsed.path))


def _link_or_copy(source: str, destination: str) -> None:
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


class Storage:
    """Lists, downloads and uploads under s3:// or file:// prefixes."""

    def __init__(self, s3_client=None):
        self._s3 = s3_client

    @property
    def s3(self):
        if self._s3 is None:
            import boto3

            self._s3 = boto3.client("s3")
        return self._s3

    def list(self, uri: str) -> list[str]:
        """Relative names of every object under a prefix, sorted (S3's order)."""
        scheme = urlparse(uri).scheme
        if scheme == "file":
            root = _local_path(uri)
            if not root.is_dir():
                return []
            return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
        bucket, prefix = split_s3(uri)
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        names = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            names.extend(o["Key"][len(prefix) :] for o in page.get("Contents", []))
        return sorted(n for n in names if n and not n.endswith("/"))

    def download(self, uri: str, names: list[str], folder: Path) -> None:
        """Copy the named objects under ``uri`` into ``folder``, keeping their relative paths."""
        scheme = urlparse(uri).scheme
        for name in names:
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if scheme == "file":
                _link_or_copy(str(_local_path(uri) / name), str(target))
            else:
                bucket, prefix = split_s3(uri)
                key = f"{prefix.rstrip('/')}/{name}" if prefix else name
                self.s3.download_file(bucket, key, str(target))

    def upload(self, path: Path, uri: str) -> None:
        if urlparse(uri).scheme == "file":
            target = _local_path(uri)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
            return
        bucket, key = split_s3(uri)
        self.s3.upload_file(str(path), bucket, key)

    def delete(self, uri: str, names: list[str]) -> None:
        if not names:
            return
        if urlparse(uri).scheme == "file":
            for name in names:
                (_local_path(uri) / name).unlink(missing_ok=True)
            return
        bucket, prefix = split_s3(uri)
        keys = [f"{prefix.rstrip('/')}/{n}" if prefix else n for n in names]
        for start in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[start : start + 1000]]
            self.s3.delete_objects(Bucket=bucket, Delete={"Objects": batch})

    def sync_up(self, folder: Path, uri: str) -> int:
        """Make ``uri`` hold exactly the files of ``folder`` (SageMaker's checkpoint sync).

        The trainer keeps writing while this runs: a file gone between the listing and its
        upload (an older checkpoint rotated out, a temporary file renamed) is not uploaded,
        and counts as deleted."""
        listed = (
            sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
            if folder.is_dir()
            else []
        )
        local = []
        for name in listed:
            try:
                self.upload(folder / name, f"{uri.rstrip('/')}/{name}")
            except FileNotFoundError:
                continue
            local.append(name)
        self.delete(uri, sorted(set(self.list(uri)) - set(local)))
        return len(local)

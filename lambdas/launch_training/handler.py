"""Lambda entry point: ``launch_training.handler.handler``.

event (S3 notification or EventBridge S3 event of ``datasets/<name>/_launch.json``, or a
console request)
-> launch request -> CreateTrainingJob request -> one SageMaker call. Returns
``{"status": "launched" | "already_launched" | "refused", ...}`` for a console
request and ``{"results": [...]}`` (one per record) for an S3 notification.
"""

from __future__ import annotations

import functools
import logging
import os
import uuid
from typing import Any

import boto3

from launch_training import launcher, settings

logging.getLogger("launch_training").setLevel(logging.INFO)


@functools.cache
def _clients(region: str | None, endpoint: str | None) -> launcher.Clients:
    """One set of clients per warm container. boto3 reads AWS_ENDPOINT_URL itself; `endpoint` is
    only part of the cache key, so a process that switches emulators gets fresh clients."""
    session = boto3.session.Session(region_name=region)
    return launcher.Clients(*(session.client(name) for name in ("s3", "ecr", "sagemaker", "sns")))


def handler(event: Any, context: Any) -> dict[str, Any]:
    config = settings.load(os.environ)
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    aws = _clients(region, os.environ.get("AWS_ENDPOINT_URL"))
    request_id = getattr(context, "aws_request_id", None) or uuid.uuid4().hex
    return launcher.handle(event, request_id, config, aws)

"""Commands about datasets: ``upload`` (a folder, or a Ground Truth manifest imported into the
bucket), with the trigger object written last so that the launcher starts the job."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from detrain import aws_calls, ground_truth_import, upload
from detrain.cli_error import CliError
from detrain.job_commands import override_options, overrides_from


def _upload(args: argparse.Namespace) -> int:
    if (args.folder is None) == (args.ground_truth is None):
        raise CliError("give a dataset FOLDER or --ground-truth MANIFEST (one of the two)")
    overrides = overrides_from(args)
    aws = aws_calls.session(args)
    bucket = aws_calls.find_deployment(args, aws, "bucket").bucket
    if args.ground_truth:
        return _upload_ground_truth(args, aws, bucket, overrides)
    result = upload.upload_dataset(
        bucket,
        args.name,
        args.folder,
        overrides,
        s3=aws.client("s3", config=upload.client_config()),
        trigger=not args.no_trigger,
        delete=args.delete,
        progress=not args.no_progress,
    )
    print(
        f"s3://{bucket}/{result.prefix}: {result.uploaded} files uploaded, "
        f"{result.skipped} unchanged, {result.deleted} deleted"
    )
    if result.trigger_key:
        print(f"wrote s3://{bucket}/{result.trigger_key}: the launcher starts the training job")
    return 0


def _upload_ground_truth(args: argparse.Namespace, aws, bucket: str, overrides: dict) -> int:
    upload.check_name(args.name)
    body = json.dumps(upload.check_overrides(overrides), indent=2).encode()
    result = ground_truth_import.import_manifest(
        bucket,
        args.name,
        args.ground_truth,
        s3=aws.client("s3", config=upload.client_config()),
        overrides_body=body,
        trigger=not args.no_trigger,
    )
    print(
        f"s3://{bucket}/{result.prefix}: {result.copied} images copied, {result.skipped} "
        f"unchanged; manifest s3://{bucket}/{result.manifest_key}"
    )
    if result.trigger_key:
        print(f"wrote s3://{bucket}/{result.trigger_key}: the launcher starts the training job")
    return 0


def register(subcommands: argparse._SubParsersAction) -> None:
    cmd = subcommands.add_parser(
        "upload",
        parents=[aws_calls.aws_options(), override_options()],
        help="upload a dataset folder, then write its trigger to start training",
        description="Sync FOLDER to s3://<bucket>/datasets/NAME/ (unchanged files are skipped), "
        "then write datasets/NAME/_launch.json with the overrides: the launcher starts the job.",
    )
    cmd.add_argument("name", help="dataset name: one folder name under datasets/")
    cmd.add_argument(
        "folder",
        type=Path,
        nargs="?",
        help="local dataset folder: COCO, Pascal VOC, YOLO or a Ground Truth manifest",
    )
    cmd.add_argument(
        "--ground-truth",
        metavar="MANIFEST",
        help="instead of FOLDER: a Ground Truth output manifest (s3://... or a local file); "
        "its images are copied server side into datasets/NAME/, the manifest beside them",
    )
    cmd.add_argument("--bucket", help="the data bucket (default: the stack's output)")
    cmd.add_argument("--no-trigger", action="store_true", help="upload only; launch later")
    cmd.add_argument("--delete", action="store_true", help="delete objects not in FOLDER")
    cmd.add_argument("--no-progress", action="store_true", help="no progress bar")
    cmd.set_defaults(func=_upload)

"""Commands that talk to AWS: doctor, upload, launch, list, describe, stop, follow, fetch.

Resources come from the stack's outputs (CloudFormation DescribeStacks on ``Detrain``), or
from --bucket / --function. ``launch`` invokes the deployed launcher function, so a request
from here is validated exactly as an upload's or a console Test's.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import sys
import tarfile
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from boto3.exceptions import Boto3Error
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from tqdm import tqdm

from contract.names import JOB_NAME_PREFIX, STACK_NAME, Env
from contract.sagemaker import INPUT_MODES, S3_DISTRIBUTIONS
from detrain import deployment, doctor, ground_truth, hyperparameter_options, upload
from detrain.cli_error import CliError
from detrain.hyperparameter_options import hyperparameter_values
from launch_training.request import CLIENT_TOKEN

ENDED = ("Completed", "Failed", "Stopped")
log = logging.getLogger(__name__)


def aws_command(func):
    """Turn the known failures of AWS and of the inputs into one-line CliErrors."""

    @functools.wraps(func)
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except (deployment.DeploymentError, upload.UploadError) as error:
            raise CliError(str(error)) from None
        except NoCredentialsError:
            raise CliError(deployment.NO_CREDENTIALS) from None
        except ClientError as error:
            details = error.response["Error"]
            raise CliError(f"{details.get('Code')}: {details.get('Message')}") from None
        except (BotoCoreError, Boto3Error) as error:  # no connection, a failed transfer, ...
            raise CliError(str(error)) from None

    return run


def _session(args: argparse.Namespace):
    if not args.verbose:
        for noisy in ("botocore", "boto3", "urllib3"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    return deployment.session(region=args.region, profile=args.profile)


def _deployment(args: argparse.Namespace, aws, *need: str) -> deployment.Deployment:
    return deployment.find(
        aws,
        need=need,
        stack_name=args.stack,
        bucket=getattr(args, "bucket", None),
        function_name=getattr(args, "function", None),
    )


# ---- requests ---------------------------------------------------------------------------


def overrides_from(args: argparse.Namespace) -> dict[str, Any]:
    """The override fields of a console request / trigger body, from the command line."""
    hyperparameters = hyperparameter_values(args.hp)
    fields = {
        "hyperparameters": hyperparameters or None,
        "instance_type": args.instance_type,
        "instance_count": args.instance_count,
        "spot": args.spot,
        "max_runtime_hours": args.max_runtime_hours,
        "job_name": args.job_name,
        "input_mode": args.input_mode,
        "s3_distribution": args.s3_distribution,
    }
    return upload.check_overrides({k: v for k, v in fields.items() if v is not None})


def launch_request(args: argparse.Namespace) -> dict[str, Any]:
    """The console request ``detrain launch`` sends (the same JSON works in the console)."""
    return {"dataset": args.dataset, **overrides_from(args)}


# ---- commands ---------------------------------------------------------------------------


@aws_command
def _upload(args: argparse.Namespace) -> int:
    if (args.folder is None) == (args.ground_truth is None):
        raise CliError("give a dataset FOLDER or --ground-truth MANIFEST (one of the two)")
    overrides = overrides_from(args)
    aws = _session(args)
    bucket = _deployment(args, aws, "bucket").bucket
    if args.ground_truth:
        return _upload_ground_truth(args, aws, bucket, overrides)
    result = upload.upload_dataset(
        bucket,
        args.name,
        args.folder,
        overrides,
        s3=aws.client("s3"),
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
    try:
        upload.check_name(args.name)
        body = json.dumps(upload.check_overrides(overrides), indent=2).encode()
        result = ground_truth.import_manifest(
            bucket,
            args.name,
            args.ground_truth,
            s3=aws.client("s3"),
            overrides_body=body,
            trigger=not args.no_trigger,
        )
    except (upload.UploadError, ground_truth.ManifestError) as error:
        raise CliError(str(error)) from None
    print(
        f"s3://{bucket}/{result.prefix}: {result.copied} images copied, {result.skipped} "
        f"unchanged; manifest s3://{bucket}/{result.manifest_key}"
    )
    if result.trigger_key:
        print(f"wrote s3://{bucket}/{result.trigger_key}: the launcher starts the training job")
    return 0


@aws_command
def _launch(args: argparse.Namespace) -> int:
    request = launch_request(args)
    if args.print_request:
        print(json.dumps(request, indent=2))
        return 0
    aws = _session(args)
    function_name = _deployment(args, aws, "function_name").function_name
    check_launch_quota(args, aws, function_name)
    # One token per `detrain launch`: a retried invoke (below, or Lambda's) starts no second job.
    request[CLIENT_TOKEN] = uuid.uuid4().hex
    client = aws.client("lambda", config=Config(read_timeout=90, retries={"max_attempts": 3}))
    response = client.invoke(FunctionName=function_name, Payload=json.dumps(request).encode())
    return print_launch_result(response["Payload"].read(), response.get("FunctionError"))


def doctor_clients(aws) -> doctor.Clients:
    return doctor.Clients(aws)


def launcher_environment(aws, function_name: str) -> dict[str, str]:
    """The deployed launcher's settings (its environment); {} when they cannot be read."""
    try:
        config = aws.client("lambda").get_function_configuration(FunctionName=function_name)
    except (ClientError, BotoCoreError) as error:
        log.debug("cannot read %s's configuration: %s", function_name, error)
        return {}
    return config.get("Environment", {}).get("Variables", {})


def check_launch_quota(args: argparse.Namespace, aws, function_name: str) -> None:
    """The quota the requested job needs, as `detrain doctor` checks it; CliError if too low."""
    settings = launcher_environment(aws, function_name)
    instance_type = args.instance_type or settings.get(Env.DEFAULT_INSTANCE_TYPE)
    if not instance_type:
        allowed = settings.get(Env.ALLOWED_INSTANCE_TYPES, "")
        instance_type = allowed.split(",")[0].strip() or _cdk_settings().default_instance_type
    spot = args.spot if args.spot is not None else settings.get(Env.SPOT, "preferred") != "off"
    finding = doctor.launch_preflight(
        doctor_clients(aws), instance_type, spot, args.instance_count or 1
    )
    if finding.ok:
        return
    if finding.detail.startswith("could not check"):
        print(f"warning: the quota was not checked: {finding.detail}", file=sys.stderr)
        return
    raise CliError(f"refused before launching:\n{finding.text()}")


def _cdk_settings():
    from detrain.local_runner import REPO_ROOT
    from infra.settings import from_context, load_context

    return from_context(load_context(REPO_ROOT / "cdk.json"))


@aws_command
def _doctor(args: argparse.Namespace) -> int:
    aws = _session(args)
    findings = doctor.run(
        doctor_clients(aws),
        region=aws.region_name,
        instance_types=_cdk_settings().instance_types,
        cdk_out=args.cdk_out,
        stack_name=args.stack,
    )
    for finding in findings:
        print(finding.text())
    problems = sum(not f.ok for f in findings)
    print(f"{problems} problem{'s' if problems != 1 else ''} found" if problems else "all good")
    return 1 if problems else 0


def print_launch_result(payload: bytes, function_error: str | None) -> int:
    try:
        result = json.loads(payload)
    except ValueError:
        raise CliError(f"the launcher answered {payload[:200]!r}, not JSON") from None
    if function_error:
        message = result.get("errorMessage") if isinstance(result, dict) else result
        raise CliError(f"the launcher failed ({function_error}): {message}")
    if not isinstance(result, dict):
        raise CliError(f"the launcher answered {result!r}, not a launch result")
    if result.get("status") == "refused":
        print(f"refused: {result.get('reason')}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


@aws_command
def _list(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"SortBy": "CreationTime", "SortOrder": "Descending"}
    params["MaxResults"] = min(args.max, 100)  # ListTrainingJobs' page limit
    if not args.all:
        params["NameContains"] = JOB_NAME_PREFIX
    if args.status:
        params["StatusEquals"] = args.status
    jobs = _session(args).client("sagemaker").list_training_jobs(**params)["TrainingJobSummaries"]
    if not jobs:
        print("no training jobs")
        return 0
    width = max(len(job["TrainingJobName"]) for job in jobs)
    print(f"{'JOB':<{width}}  {'STATUS':<10}  CREATED")
    for job in jobs:
        created = _time(job.get("CreationTime"))
        print(f"{job['TrainingJobName']:<{width}}  {job['TrainingJobStatus']:<10}  {created}")
    return 0


def _time(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S %Z").strip() if isinstance(value, datetime) else "-"


def summary(job: dict[str, Any]) -> list[str]:
    """DescribeTrainingJob -> the lines an operator reads first."""
    resources = job.get("ResourceConfig", {})
    channels = job.get("InputDataConfig", [])
    lines = [
        f"job:        {job['TrainingJobName']}",
        f"status:     {job['TrainingJobStatus']} ({job.get('SecondaryStatus', '-')})",
    ]
    if job.get("FailureReason"):
        lines.append(f"failure:    {job['FailureReason']}")
    for channel in channels:
        uri = channel["DataSource"]["S3DataSource"]["S3Uri"]
        lines.append(f"data:       {channel['ChannelName']} = {uri}")
    spot = "spot" if job.get("EnableManagedSpotTraining") else "on-demand"
    lines.append(
        f"instances:  {resources.get('InstanceCount', '?')} x {resources.get('InstanceType', '?')}"
        f" ({spot})"
    )
    lines.append(f"created:    {_time(job.get('CreationTime'))}")
    lines.append(f"ended:      {_time(job.get('TrainingEndTime'))}")
    training, billable = job.get("TrainingTimeInSeconds"), job.get("BillableTimeInSeconds")
    if training:
        saved = f", saved {1 - billable / training:.0%}" if billable is not None else ""
        lines.append(f"time:       {training} s training, {billable} s billable{saved}")
    metrics = job.get("FinalMetricDataList") or []
    if metrics:
        values = ", ".join(f"{m['MetricName']}={m['Value']:g}" for m in metrics)
        lines.append(f"metrics:    {values}")
    model = job.get("ModelArtifacts", {}).get("S3ModelArtifacts")
    if model:
        lines.append(f"model:      {model}")
    return lines


@aws_command
def _describe(args: argparse.Namespace) -> int:
    job = _session(args).client("sagemaker").describe_training_job(TrainingJobName=args.job)
    if args.json:
        job.pop("ResponseMetadata", None)
        print(json.dumps(job, indent=2, default=str))
    else:
        print("\n".join(summary(job)))
    return 0


@aws_command
def _stop(args: argparse.Namespace) -> int:
    sagemaker = _session(args).client("sagemaker")
    status = sagemaker.describe_training_job(TrainingJobName=args.job)["TrainingJobStatus"]
    check_stoppable(args.job, status)
    sagemaker.stop_training_job(TrainingJobName=args.job)
    print(f"stopping {args.job}: SageMaker sends SIGTERM, then SIGKILL 120 s later")
    return 0


def check_stoppable(job: str, status: str) -> None:
    if status in ENDED or status == "Stopping":
        raise CliError(f"job {job!r} is {status}; only an InProgress job can be stopped")


@aws_command
def _follow(args: argparse.Namespace) -> int:
    final = wait_for_job(_session(args), args.job, args.poll)
    print("\n".join(summary(final)))
    return 0 if final["TrainingJobStatus"] == "Completed" else 1


def wait_for_job(aws, job_name: str, poll: int) -> dict[str, Any]:
    """Until the job ends, printing its status and CloudWatch logs; DescribeTrainingJob then."""
    from sagemaker.core.resources import TrainingJob  # heavy: imported only when needed
    from sagemaker.core.utils.exceptions import FailedStatusError

    job = TrainingJob.get(training_job_name=job_name, session=aws, region=aws.region_name)
    with contextlib.suppress(FailedStatusError):  # the caller's summary says why
        job.wait(poll=poll, logs=True)
    return aws.client("sagemaker").describe_training_job(TrainingJobName=job_name)


@aws_command
def _fetch(args: argparse.Namespace) -> int:
    aws = _session(args)
    job = aws.client("sagemaker").describe_training_job(TrainingJobName=args.job)
    uri = job.get("ModelArtifacts", {}).get("S3ModelArtifacts")
    if job["TrainingJobStatus"] != "Completed" or not uri:
        raise CliError(
            f"job {args.job!r} is {job['TrainingJobStatus']}; only a Completed job has a model"
        )
    target = args.output / args.job
    archive = fetch_model(aws.client("s3"), uri, target, progress=not args.no_progress)
    print(f"model of {args.job}: {archive} unpacked into {target / 'model'}")
    return 0


def fetch_model(s3, uri: str, target: Path, *, progress: bool = True) -> Path:
    """Download s3://.../model.tar.gz into `target` and unpack it (safely) into target/model."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    target.mkdir(parents=True, exist_ok=True)
    archive = target / Path(key).name
    try:
        size = s3.head_object(Bucket=bucket, Key=key)["ContentLength"]
    except ClientError as error:
        raise CliError(f"model {uri} cannot be read: {error.response['Error']['Code']}") from None
    partial = archive.with_suffix(".part")
    with tqdm(total=size, unit="B", unit_scale=True, desc="fetch", disable=not progress) as bar:
        s3.download_file(bucket, key, str(partial), Callback=bar.update)
    partial.replace(archive)
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(target / "model", filter="data")
    except (tarfile.TarError, OSError) as error:
        raise CliError(f"cannot unpack {archive}: {error}") from None
    return archive


# ---- argument parsing -------------------------------------------------------------------


def _positive(raw: str) -> int:
    if not raw.isdigit() or int(raw) < 1:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number of at least 1")
    return int(raw)


def _aws_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--region", help="AWS region (default: your AWS configuration)")
    parent.add_argument("--profile", help="AWS profile (default: your AWS configuration)")
    parent.add_argument(
        "--stack", default=STACK_NAME, help=f"the deployed stack (default {STACK_NAME})"
    )
    return parent


def _override_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("training overrides (checked against the deployment)")
    hyperparameter_options.add_option(group)
    group.add_argument("--instance-type", help="e.g. ml.g5.xlarge (must be allowed)")
    group.add_argument("--instance-count", type=int, help="instances (default 1; must be allowed)")
    spot = group.add_mutually_exclusive_group()
    spot.add_argument(
        "--spot",
        dest="spot",
        action="store_true",
        default=None,
        help="managed spot training (default: the deployment's SPOT setting)",
    )
    spot.add_argument("--no-spot", dest="spot", action="store_false", help="on-demand instances")
    group.add_argument(
        "--max-runtime-hours", type=float, help="stop after this long (default: the deployment's)"
    )
    group.add_argument("--job-name", help=f"job name (gets the {JOB_NAME_PREFIX!r} prefix)")
    group.add_argument("--input-mode", choices=INPUT_MODES, help="File (default) or FastFile")
    group.add_argument(
        "--s3-distribution",
        choices=S3_DISTRIBUTIONS,
        help="with --instance-count > 1: FullyReplicated (default, every host gets all the data) "
        "or ShardedByS3Key (each host gets ~1/N of the objects; see docs/scaling.md)",
    )
    return parent


def register(subcommands: argparse._SubParsersAction) -> None:
    aws, overrides = _aws_options(), _override_options()

    cmd = subcommands.add_parser(
        "doctor",
        parents=[aws],
        help="check the AWS account before a deploy or a launch, with the fix for each finding",
        description="Credentials and region, the CDK bootstrap version, Lambda concurrency, "
        "SageMaker training quotas (on-demand and spot) for every allowed instance type, the "
        "CodeBuild build quota, the deployed stack and its image. Exit status 1 on a finding.",
    )
    cmd.add_argument(
        "--cdk-out",
        type=Path,
        default=Path("cdk.out"),
        help="the synthesized app, for the bootstrap version it needs (default ./cdk.out)",
    )
    cmd.set_defaults(func=_doctor)

    cmd = subcommands.add_parser(
        "upload",
        parents=[aws, overrides],
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

    cmd = subcommands.add_parser(
        "launch",
        parents=[aws, overrides],
        help="start a training job on an uploaded dataset (through the launcher function)",
        description="Invoke the deployed launcher with a console request; prints its result "
        "(exit status 1 when it refuses, with the reason).",
    )
    cmd.add_argument("dataset", help="NAME, datasets/NAME/ or s3://<bucket>/datasets/NAME/")
    cmd.add_argument("--function", help="launcher function (default: the stack's output)")
    cmd.add_argument(
        "--print-request",
        action="store_true",
        help="print the request (a Lambda console Test event) instead of sending it",
    )
    cmd.set_defaults(func=_launch)

    cmd = subcommands.add_parser("list", parents=[aws], help="list recent training jobs")
    cmd.add_argument("--status", choices=("InProgress", *ENDED, "Stopping"))
    cmd.add_argument(
        "--max", type=_positive, default=20, help="at most this many, up to 100 (default 20)"
    )
    cmd.add_argument("--all", action="store_true", help=f"not only {JOB_NAME_PREFIX}* jobs")
    cmd.set_defaults(func=_list)

    cmd = subcommands.add_parser("describe", parents=[aws], help="show one training job")
    cmd.add_argument("job", help="training job name")
    cmd.add_argument("--json", action="store_true", help="the full DescribeTrainingJob answer")
    cmd.set_defaults(func=_describe)

    cmd = subcommands.add_parser("stop", parents=[aws], help="stop a running training job")
    cmd.add_argument("job", help="training job name")
    cmd.set_defaults(func=_stop)

    cmd = subcommands.add_parser(
        "follow", parents=[aws], help="print a job's status and logs until it ends"
    )
    cmd.add_argument("job", help="training job name")
    cmd.add_argument("--poll", type=int, default=10, help="seconds between polls (default 10)")
    cmd.set_defaults(func=_follow)

    cmd = subcommands.add_parser(
        "fetch", parents=[aws], help="download and unpack a completed job's model"
    )
    cmd.add_argument("job", help="training job name")
    cmd.add_argument("--output", type=Path, default=Path("models"), help="default ./models/")
    cmd.add_argument("--no-progress", action="store_true", help="no progress bar")
    cmd.set_defaults(func=_fetch)

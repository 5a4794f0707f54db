"""Commands about training jobs: launch, list, describe, stop, follow, fetch.

``launch`` invokes the deployed launcher function, so a request from here is validated exactly
as an upload's or a console Test's. Before it does, it checks the request against the
deployed launcher's allow-list and the account's quota for the job (as `detrain doctor` does).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tarfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from tqdm import tqdm

from contract.launcher_settings import LauncherSettings, SettingsError
from contract.names import JOB_NAME_PREFIX
from contract.outputs import MODEL_ARCHIVE
from contract.sagemaker import INPUT_MODES, S3_DISTRIBUTIONS
from contract.tuning import TUNING_JOB_NAME_MAX, TuningError
from detrain import aws_calls, doctor, hyperparameter_options, tuning_results, upload
from detrain.cli_error import CliError
from detrain.hyperparameter_options import hyperparameter_values
from launch_training.events import Refused
from launch_training.request import (
    CLIENT_TOKEN,
    allowed_instance_count,
    allowed_instance_type,
    keep_alive_seconds,
)

ENDED = ("Completed", "Failed", "Stopped")


# ---- requests ---------------------------------------------------------------------------


def override_options() -> argparse.ArgumentParser:
    """The training overrides of `upload` (its trigger's body) and `launch` (its request)."""
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
    group.add_argument(
        "--keep-alive",
        type=aws_calls.whole_number,
        metavar="MINUTES",
        help="a warm pool: keep the instances this long after the job for the next matching "
        "one (billed while it waits; needs --no-spot; at most detrain:maxKeepAliveMinutes)",
    )
    group.add_argument("--input-mode", choices=INPUT_MODES, help="File (default) or FastFile")
    group.add_argument(
        "--s3-distribution",
        choices=S3_DISTRIBUTIONS,
        help="with --instance-count > 1: FullyReplicated (default, every host gets all the data) "
        "or ShardedByS3Key (each host gets ~1/N of the objects; see docs/scaling.md)",
    )
    return parent


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
        "keep_alive_minutes": args.keep_alive,
    }
    return upload.check_overrides({k: v for k, v in fields.items() if v is not None})


def launch_request(args: argparse.Namespace) -> dict[str, Any]:
    """The console request ``detrain launch`` sends (the same JSON works in the console)."""
    return {"dataset": args.dataset, **overrides_from(args)}


# ---- launch -----------------------------------------------------------------------------


def _launch(args: argparse.Namespace) -> int:
    return send_request(args, launch_request(args))


def send_request(
    args: argparse.Namespace, request: dict[str, Any], check: Callable | None = None, parallel=1
) -> int:
    """Print the request (--print-request), or check it against the deployed launcher's
    settings and the account's quota, then invoke the launcher with it. ``check(settings)``
    adds the caller's own checks (a tuning block's caps); ``parallel`` jobs need quota at once."""
    if args.print_request:
        print(json.dumps(request, indent=2))
        return 0
    aws = aws_calls.session(args)
    function_name = aws_calls.find_deployment(args, aws, "function_name").function_name
    settings = _launcher_settings(aws, function_name)
    if settings is not None:
        try:
            instance_type = allowed_instance_type(args.instance_type, settings)
            count = allowed_instance_count(args.instance_count, settings)
            spot = args.spot if args.spot is not None else settings.spot != "off"
            keep_alive_seconds(args.keep_alive, spot, settings)
            if check is not None:
                check(settings)
        except (Refused, TuningError) as refused:
            print(f"refused: {refused}", file=sys.stderr)
            return 1
        check_launch_quota(aws, instance_type, spot, count * parallel)
    # One token per `detrain launch`: a retried invoke (below, or Lambda's) starts no second job.
    request[CLIENT_TOKEN] = uuid.uuid4().hex
    client = aws.client("lambda", config=Config(read_timeout=90, retries={"max_attempts": 3}))
    response = client.invoke(FunctionName=function_name, Payload=json.dumps(request).encode())
    return print_launch_result(response["Payload"].read(), response.get("FunctionError"))


def _launcher_settings(aws, function_name: str) -> LauncherSettings | None:
    """The deployed launcher's settings; None (and a warning) when they cannot be read: the
    function still checks the request itself."""
    try:
        return aws_calls.deployed_launcher_settings(aws, function_name)
    except (ClientError, BotoCoreError, SettingsError) as error:
        print(
            f"warning: the request and the quota were not checked before launching: cannot "
            f"read {function_name}'s settings ({error})",
            file=sys.stderr,
        )
        return None


def check_launch_quota(aws, instance_type: str, spot: bool, count: int) -> None:
    """The quota the requested job needs, as `detrain doctor` checks it; CliError if too low."""
    finding = doctor.launch_preflight(aws_calls.doctor_clients(aws), instance_type, spot, count)
    if finding.ok:
        return
    if finding.detail.startswith("could not check"):
        print(f"warning: the quota was not checked: {finding.detail}", file=sys.stderr)
        return
    raise CliError(f"refused before launching:\n{finding.text()}")


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


# ---- list, describe, stop, follow -------------------------------------------------------


def _list(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"SortBy": "CreationTime", "SortOrder": "Descending"}
    params["MaxResults"] = min(args.max, 100)  # ListTrainingJobs' page limit
    if not args.all:
        params["NameContains"] = JOB_NAME_PREFIX
    if args.status:
        params["StatusEquals"] = args.status
    sagemaker = aws_calls.session(args).client("sagemaker")
    jobs = sagemaker.list_training_jobs(**params)["TrainingJobSummaries"]
    tuning = tuning_results.list_lines(
        sagemaker, max_results=args.max, all_jobs=args.all, status=args.status
    )
    if tuning:
        print("\n".join([*tuning, ""]))
    if not jobs:
        print("no training jobs")
        return 0
    width = max(len(job["TrainingJobName"]) for job in jobs)
    print(f"{'JOB':<{width}}  {'STATUS':<10}  CREATED")
    for job in jobs:
        created = tuning_results.when(job.get("CreationTime"))
        print(f"{job['TrainingJobName']:<{width}}  {job['TrainingJobStatus']:<10}  {created}")
    return 0


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
    lines.append(f"created:    {tuning_results.when(job.get('CreationTime'))}")
    lines.append(f"ended:      {tuning_results.when(job.get('TrainingEndTime'))}")
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


def _describe(args: argparse.Namespace) -> int:
    sagemaker = aws_calls.session(args).client("sagemaker")
    try:
        job = sagemaker.describe_training_job(TrainingJobName=args.job)
    except ClientError as error:
        if not tuning_results.not_found(error) or len(args.job) > TUNING_JOB_NAME_MAX:
            raise
        print("\n".join(tuning_results.describe(sagemaker, args.job, as_json=args.json)))
        return 0
    if args.json:
        job.pop("ResponseMetadata", None)
        print(json.dumps(job, indent=2, default=str))
    else:
        print("\n".join(summary(job)))
    return 0


def _stop(args: argparse.Namespace) -> int:
    sagemaker = aws_calls.session(args).client("sagemaker")
    status = sagemaker.describe_training_job(TrainingJobName=args.job)["TrainingJobStatus"]
    check_stoppable(args.job, status)
    sagemaker.stop_training_job(TrainingJobName=args.job)
    print(f"stopping {args.job}: SageMaker sends SIGTERM, then SIGKILL 120 s later")
    return 0


def check_stoppable(job: str, status: str) -> None:
    if status in ENDED or status == "Stopping":
        raise CliError(f"job {job!r} is {status}; only an InProgress job can be stopped")


def _follow(args: argparse.Namespace) -> int:
    final = wait_for_job(aws_calls.session(args), args.job, args.poll)
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


# ---- fetch ------------------------------------------------------------------------------


def _fetch(args: argparse.Namespace) -> int:
    aws = aws_calls.session(args)
    job = tuning_results.described_job(aws.client("sagemaker"), args.job)
    name, uri = job["TrainingJobName"], job.get("ModelArtifacts", {}).get("S3ModelArtifacts")
    if job["TrainingJobStatus"] != "Completed" or not uri:
        raise CliError(
            f"job {name!r} is {job['TrainingJobStatus']}; only a Completed job has a model"
        )
    target = args.output / name
    archive = fetch_model(aws.client("s3"), uri, target, progress=not args.no_progress)
    print(f"model of {name}: {archive} unpacked into {target / 'model'}")
    return 0


def fetch_model(s3, uri: str, target: Path, *, progress: bool = True) -> Path:
    """Download a job's model archive (at `uri`) into `target` and unpack it, safely, into
    target/model."""
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


def register(subcommands: argparse._SubParsersAction) -> None:
    aws = aws_calls.aws_options()

    cmd = subcommands.add_parser(
        "launch",
        parents=[aws, override_options()],
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

    cmd = subcommands.add_parser(
        "list", parents=[aws], help="list recent tuning jobs and training jobs"
    )
    cmd.add_argument("--status", choices=("InProgress", *ENDED, "Stopping"))
    cmd.add_argument(
        "--max",
        type=aws_calls.whole_number,
        default=20,
        help="at most this many, up to 100 (default 20)",
    )
    cmd.add_argument("--all", action="store_true", help=f"not only {JOB_NAME_PREFIX}* jobs")
    cmd.set_defaults(func=_list)

    cmd = subcommands.add_parser(
        "describe", parents=[aws], help="show one training job, or a tuning job and its trials"
    )
    cmd.add_argument("job", help="training job or tuning job name")
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
        "fetch",
        parents=[aws],
        help="download and unpack a completed job's model",
        description=f"Download JOB's {MODEL_ARCHIVE} into OUTPUT/JOB/ and unpack it into "
        "OUTPUT/JOB/model/. For a tuning job, JOB is its best trial.",
    )
    cmd.add_argument("job", help="training job name, or tuning job name (its best trial)")
    cmd.add_argument("--output", type=Path, default=Path("models"), help="default ./models/")
    cmd.add_argument("--no-progress", action="store_true", help="no progress bar")
    cmd.set_defaults(func=_fetch)

"""``detrain first-job``: one short job on the cheapest allowed GPU proves the GPU path for cents.

What only a real training host shows: which GPU and driver SageMaker gave, which way the
image's CUDA forward-compatibility start-up went, how fast a step runs, and what it billed.
The command uploads the sample dataset (trainer/sample_data.py) to ``datasets/first-job-shapes/``
without a trigger, asks the deployed launcher (Lambda Invoke, so the deployment's rules apply)
for one job on the cheapest GPU type of its allow-list (detrain/instance_prices.py), spot where
the deployment allows, with a 30-minute MaxRuntime; follows it as ``detrain follow`` does; then
reads the job's CloudWatch log and DescribeTrainingJob into a report (detrain/first_job_report.py).

``--rehearse`` runs the same flow on this machine: the emulator holds the stack's resources and
the launcher function's settings, the launcher's handler creates the job, the local runner runs
it as SageMaker would and its log goes to the emulated CloudWatch stream the report reads.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from botocore.config import Config

from contract.launcher_settings import LauncherSettings
from contract.names import PROJECT
from contract.sagemaker import TRAINING_LOG_GROUP
from detrain import (
    aws_calls,
    deployment,
    hyperparameter_options,
    instance_prices,
    upload,
)
from detrain.cli_error import CliError
from detrain.first_job_report import JobOutcome, format_report, read_log
from detrain.hyperparameter_options import hyperparameter_strings
from launch_training.request import CLIENT_TOKEN
from trainer import sample_data

DATASET = "first-job-shapes"
MAX_RUNTIME_HOURS = 0.5
SAMPLE_IMAGES = 96
# A few short epochs on small images: enough for the preflight, an epoch time, and a model.
HYPERPARAMETERS = {"epochs": "3", "image_size": "256"}
REHEARSAL_FOLDER = Path(".rehearsal") / "first-job"
HOST_LOG = "algo-1.log"  # the local runner's log of the first host


class FirstJobError(CliError):
    """The first job could not be launched; the message says why and what to do."""


@dataclass(frozen=True)
class Plan:
    """The one job the first-job command asks the launcher for."""

    instance_type: str
    spot: bool
    hyperparameters: dict[str, str]

    def request(self) -> dict[str, Any]:
        """The launcher's console request (the same JSON works as a Lambda console Test)."""
        return {
            "dataset": DATASET,
            "instance_type": self.instance_type,
            "instance_count": 1,
            "spot": self.spot,
            "max_runtime_hours": MAX_RUNTIME_HOURS,
            "hyperparameters": self.hyperparameters,
        }


def plan(
    settings: LauncherSettings, hyperparameters: dict[str, str], instance_type: str | None = None
) -> Plan:
    """The cheapest allowed GPU type (or the one asked for, if allowed), spot unless the
    deployment forbids it, the first job's hyperparameters under the caller's."""
    allowed = settings.allowed_instance_types
    if instance_type is None:
        try:
            instance_type = instance_prices.cheapest_gpu_type(allowed)
        except instance_prices.NoGpuTypeError as error:
            raise FirstJobError(str(error)) from None
    elif instance_type not in allowed or not instance_prices.is_gpu(instance_type):
        gpus = [t for t in allowed if instance_prices.is_gpu(t)]
        raise FirstJobError(
            f"--instance-type {instance_type} is not an allowed GPU type of this deployment; "
            f"allowed: {', '.join(gpus) or 'none (add one to detrain:instanceTypes)'}"
        )
    return Plan(instance_type, settings.spot != "off", {**HYPERPARAMETERS, **hyperparameters})


def launched_job_name(result: Any) -> str:
    """The job a launcher's console answer names; FirstJobError with the refusal otherwise."""
    if isinstance(result, dict) and result.get("status") in ("launched", "already_launched"):
        return result["job_name"]
    reason = result.get("reason") if isinstance(result, dict) else None
    raise FirstJobError(f"the launcher refused the first job: {reason or repr(result)}")


def job_log_text(logs, job_name: str) -> str:
    """Every line of the job's CloudWatch streams (``<job>/algo-N-<time>``), host by host."""
    lines: list[str] = []
    paginator = logs.get_paginator("describe_log_streams")
    streams = [
        stream["logStreamName"]
        for page in paginator.paginate(
            logGroupName=TRAINING_LOG_GROUP, logStreamNamePrefix=f"{job_name}/"
        )
        for stream in page["logStreams"]
    ]
    for stream in sorted(streams):
        token = None
        while True:
            kwargs = {"nextToken": token} if token else {}
            page = logs.get_log_events(
                logGroupName=TRAINING_LOG_GROUP, logStreamName=stream, startFromHead=True, **kwargs
            )
            lines += [event["message"] for event in page["events"]]
            if not page["events"] or page["nextForwardToken"] == token:
                break
            token = page["nextForwardToken"]
    return "\n".join(lines)


def outcome_from_description(description: dict[str, Any]) -> JobOutcome:
    billable = description.get("BillableTimeInSeconds")
    return JobOutcome(
        job_name=description["TrainingJobName"],
        instance_type=description.get("ResourceConfig", {}).get("InstanceType", "?"),
        spot=bool(description.get("EnableManagedSpotTraining")),
        status=description["TrainingJobStatus"],
        failure_reason=description.get("FailureReason"),
        billable_seconds=None if billable is None else int(billable),
        billable_note="" if billable is not None else "DescribeTrainingJob gave no billable time",
    )


def _sample(folder: Path, images: int) -> Path:
    return sample_data.generate(folder / DATASET, images=images).folder


def _announce(out: TextIO, text: str) -> None:
    out.write(f"==> {text}\n")
    out.flush()


# ---- on AWS -----------------------------------------------------------------------------


def run_on_aws(args: argparse.Namespace, out: TextIO = sys.stdout) -> tuple[JobOutcome, str]:
    from detrain import doctor, job_commands

    aws = aws_calls.session(args)
    found = deployment.find(
        aws, need=("bucket", "function_name"), stack_name=args.stack, function_name=args.function
    )
    chosen = plan(
        aws_calls.deployed_launcher_settings(aws, found.function_name),
        hyperparameter_strings(args.hp),
        args.instance_type,
    )
    purchase = "spot" if chosen.spot else "on-demand"
    _announce(out, f"first job: 1 x {chosen.instance_type} ({purchase}), at most 30 minutes")
    quota = doctor.launch_preflight(doctor.Clients(aws), chosen.instance_type, chosen.spot, 1)
    if not quota.ok and not quota.detail.startswith("could not check"):
        raise FirstJobError(f"refused before launching:\n{quota.text()}")
    if not quota.ok:
        out.write(f"    warning: the quota was not checked: {quota.detail}\n")
    with tempfile.TemporaryDirectory(prefix="detrain-first-job-") as folder:
        _announce(out, f"uploading the sample dataset to s3://{found.bucket}/datasets/{DATASET}/")
        upload.upload_dataset(
            found.bucket,
            DATASET,
            _sample(Path(folder), args.images),
            s3=aws.client("s3", config=upload.client_config()),
            trigger=False,
            progress=False,
        )
    request = {**chosen.request(), CLIENT_TOKEN: uuid.uuid4().hex}
    client = aws.client("lambda", config=Config(read_timeout=90, retries={"max_attempts": 3}))
    response = client.invoke(FunctionName=found.function_name, Payload=json.dumps(request).encode())
    answer = json.loads(response["Payload"].read())
    if response.get("FunctionError"):
        raise FirstJobError(f"the launcher failed ({response['FunctionError']}): {answer}")
    job_name = launched_job_name(answer)
    _announce(out, f"following {job_name} (SageMaker's Starting and Downloading come first)")
    final = job_commands.wait_for_job(aws, job_name, args.poll)
    return outcome_from_description(final), job_log_text(aws.client("logs"), job_name)


# ---- rehearsed on this machine ----------------------------------------------------------


def rehearse(
    workdir: Path,
    *,
    images: int = SAMPLE_IMAGES,
    hyperparameters: dict[str, str] | None = None,
    instance_type: str | None = None,
    command: list[str] | None = None,
    out: TextIO = sys.stdout,
) -> tuple[JobOutcome, str]:
    """The first job in the emulator, run by the local runner (``command`` replaces the trainer)."""
    import boto3

    from detrain import emulator, rehearsal
    from detrain.local_runner import LocalRunner
    from detrain.storage import Storage
    from detrain.training_job import from_description

    workdir = Path(workdir).resolve()
    with emulator.emulated_aws(rehearsal.REGION, "first-job"):
        stack = rehearsal.create_stack()
        environment = rehearsal.launcher_settings_environment(stack)
        function_name = emulator.register_function(
            f"{PROJECT}-launcher", environment, role_name=f"{PROJECT}-first-job-launcher"
        )
        settings = aws_calls.deployed_launcher_settings(boto3.session.Session(), function_name)
        cpu_friendly = {**rehearsal.REHEARSAL_HYPERPARAMETERS, **HYPERPARAMETERS}
        chosen = plan(settings, {**cpu_friendly, **(hyperparameters or {})}, instance_type)
        purchase = "spot" if chosen.spot else "on-demand"
        _announce(out, f"first job: 1 x {chosen.instance_type} ({purchase}), emulated")
        folder = _sample(workdir, images)
        upload.upload_dataset(stack.bucket, DATASET, folder, trigger=False, progress=False)
        answer = rehearsal.invoke_launcher(chosen.request(), environment)
        job_name = launched_job_name(answer)
        description = boto3.client("sagemaker").describe_training_job(TrainingJobName=job_name)
        _announce(out, f"running {job_name} with the local runner")
        runner = LocalRunner(
            workdir / "jobs", storage=Storage(boto3.client("s3")), command=command, out=out
        )
        result = runner.run(from_description(description))
        logs = boto3.client("logs")
        publish_log(logs, job_name, (result.run_folder / HOST_LOG).read_text(errors="replace"))
        outcome = JobOutcome(
            job_name=job_name,
            instance_type=chosen.instance_type,
            spot=chosen.spot,
            status=result.status,
            failure_reason=result.failure_reason,
            billable_seconds=None,
            billable_note=f"emulator; the local run took {result.duration_seconds:.1f} s",
        )
        return outcome, job_log_text(logs, job_name)


def publish_log(logs, job_name: str, text: str) -> None:
    """The host's log as SageMaker ships it: one CloudWatch stream ``<job>/algo-1-<time>``."""
    stream = f"{job_name}/algo-1-{int(time.time())}"
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=TRAINING_LOG_GROUP)
    logs.create_log_stream(logGroupName=TRAINING_LOG_GROUP, logStreamName=stream)
    now = int(time.time() * 1000)
    events = [{"timestamp": now, "message": line} for line in text.splitlines() if line]
    for start in range(0, len(events), 1000):  # PutLogEvents: at most 10,000 events, 1 MB
        logs.put_log_events(
            logGroupName=TRAINING_LOG_GROUP,
            logStreamName=stream,
            logEvents=events[start : start + 1000],
        )


# ---- the command ------------------------------------------------------------------------


def _first_job(args: argparse.Namespace) -> int:
    from detrain import local_commands

    if args.images < 2:
        raise CliError(f"--images {args.images} is too few; allowed: 2 or more")
    if args.rehearse:
        local_commands.quiet_libraries(args.verbose)
        outcome, text = rehearse(
            args.workdir,
            images=args.images,
            hyperparameters=hyperparameter_strings(args.hp),
            instance_type=args.instance_type,
        )
    else:
        outcome, text = run_on_aws(args)
    return finish(outcome, text)


def finish(outcome: JobOutcome, log_text: str) -> int:
    """Print the report; exit status 1, with the failure reason, when the job did not complete."""
    print(format_report(outcome, read_log(log_text)), flush=True)
    if outcome.status != "Completed":
        reason = outcome.failure_reason or "no failure reason given"
        print(f"detrain first-job: the job {outcome.status}: {reason}", file=sys.stderr)
        return 1
    return 0


def register(subcommands: argparse._SubParsersAction) -> None:
    from detrain.aws_calls import aws_options

    cmd = subcommands.add_parser(
        "first-job",
        parents=[aws_options()],
        help="after the deploy: one short job on the cheapest allowed GPU, to prove the GPU path",
        description="Upload the sample dataset, launch one job on the cheapest GPU type the "
        "deployment allows (spot where allowed, 30-minute cap), follow it, and report the GPU, "
        "the driver, the CUDA forward-compatibility decision, the step time and the billable "
        "seconds. Exit status 1 when the job does not complete.",
    )
    cmd.add_argument("--instance-type", help="an allowed GPU type instead of the cheapest")
    cmd.add_argument(
        "--images",
        type=int,
        default=SAMPLE_IMAGES,
        help=f"images in the sample dataset (default {SAMPLE_IMAGES})",
    )
    hyperparameter_options.add_option(
        cmd, f"a hyperparameter over the first job's ({json.dumps(HYPERPARAMETERS)})"
    )
    cmd.add_argument("--function", help="launcher function (default: the stack's output)")
    cmd.add_argument("--poll", type=int, default=10, help="seconds between polls (default 10)")
    cmd.add_argument(
        "--rehearse",
        action="store_true",
        help="run it on this machine instead: emulated AWS, the local runner, no GPU, no cost",
    )
    cmd.add_argument(
        "--workdir",
        type=Path,
        default=REHEARSAL_FOLDER,
        help=f"with --rehearse: where the run's files stay (default {REHEARSAL_FOLDER}/)",
    )
    cmd.set_defaults(func=_first_job)

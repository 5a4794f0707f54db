"""A training job and a tuning job on the deployed stack, started with the SageMaker Python SDK v3.

The notebook way in: ``sagemaker.train.ModelTrainer`` (package sagemaker-train) starts one job,
``sagemaker.train.tuner.HyperparameterTuner`` a tuning job. Both get what the launcher gives its
jobs (lambdas/launch_training/request.py): the stack's image, training role, data bucket and
platform key (from CloudFormation's DescribeStacks, or arguments), the trainer's metric
definitions (contract/metrics.py), network isolation, inter-container encryption, managed spot
with MaxWait twice MaxRuntime, checkpoints under ``checkpoints/<job>/``, and the project's tags.
Hyperparameters and ranges are checked by the trainer's own rules (contract/) before any call.

From the repository root, with the dev venv (``make venv``)::

    .venv/bin/python docs/examples/sdk_train.py fridge --hp model=efficientdet --hp epochs=30
    .venv/bin/python docs/examples/sdk_train.py fridge --tune \\
        --range learning_rate=1e-4:1e-2:log --range image_size=384,512 --max-jobs 6

In a notebook, the same functions::

    session = boto3.Session()
    outputs = stack_outputs(session)
    trainer = model_trainer(outputs, "fridge", {"model": "efficientdet", "epochs": 30},
                            session=session)
    trainer.train(input_data_config=[dataset_input(outputs, "fridge")], wait=False)
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "training_image")]

import boto3  # noqa: E402

from contract import TRAINING_CHANNEL  # noqa: E402
from contract.hyperparameters import parse as parse_hyperparameters  # noqa: E402
from contract.layout import CHECKPOINT_PATH  # noqa: E402
from contract.metrics import metric_definitions  # noqa: E402
from contract.names import (  # noqa: E402
    CHECKPOINTS_PREFIX,
    DATASETS_PREFIX,
    JOB_NAME_PREFIX,
    PROJECT,
    STACK_NAME,
    TAG_DATASET,
    TAG_PROJECT,
    TAG_TRIGGER,
    Output,
    checkpoints_uri,
    models_uri,
)
from contract.outputs import MAX_RUNTIME_VARIABLE  # noqa: E402
from contract.tuning import CATEGORICAL, CONTINUOUS, Tuning, range_from_text  # noqa: E402
from contract.tuning import parse as parse_tuning  # noqa: E402
from infra.settings import Settings, from_context, load_context  # noqa: E402

TRIGGER_SDK = "sdk"  # the trigger tag of a job started from the SDK
VOLUME_SIZE_GB = 50  # as the launcher's jobs
# The SDK's client-side role check simulates VPC actions (ec2:CreateNetworkInterface, ...) and
# an unconditioned cloudwatch:PutMetricData: the training role is VPC-less, least-privilege and
# lacks them, so the check would refuse it. SageMaker still checks the role when it starts a job.
os.environ.setdefault("SAGEMAKER_VALIDATE_ROLE", "false")


@dataclass(frozen=True)
class StackOutputs:
    image_uri: str
    role_arn: str
    bucket: str
    kms_key_arn: str


def stack_outputs(session: boto3.Session, stack_name: str = STACK_NAME) -> StackOutputs:
    """The stack's image, training role, data bucket and platform key (DescribeStacks)."""
    stack = session.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"][0]
    found = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    keys = (Output.IMAGE_URI, Output.TRAINING_ROLE_ARN, Output.BUCKET_NAME, Output.KMS_KEY_ARN)
    missing = [key for key in keys if key not in found]
    if missing:
        raise SystemExit(
            f"stack {stack_name!r} has no output {', '.join(missing)}: deploy the current stack "
            "(npx cdk deploy), or pass --image, --role, --bucket and --kms-key"
        )
    return StackOutputs(*(found[key] for key in keys))


def typed_hyperparameters(pairs: Mapping[str, str]) -> dict[str, Any]:
    """``{"epochs": "30"}`` -> ``{"epochs": 30}``, checked by the trainer's rules. The SDK sends
    strings as they are and JSON-encodes the rest (30 -> "30", False -> "false")."""
    typed = parse_hyperparameters(pairs)
    return {name: getattr(typed, name) for name in pairs}


def base_name(dataset: str) -> str:
    """``detrain-<dataset>``: the SDK adds a time stamp to make the job's name."""
    slug = re.sub(r"[^a-zA-Z0-9]+", "-", dataset).strip("-") or "dataset"
    return f"{JOB_NAME_PREFIX}{slug}"[:40].rstrip("-")


def dataset_input(outputs: StackOutputs, dataset: str):
    """The ``training`` channel: ``s3://<bucket>/datasets/<dataset>/``."""
    from sagemaker.core.training.configs import InputData

    uri = f"s3://{outputs.bucket}/{DATASETS_PREFIX}{dataset}/"
    return InputData(channel_name=TRAINING_CHANNEL, data_source=uri)


def model_trainer(
    outputs: StackOutputs,
    dataset: str,
    hyperparameters: Mapping[str, Any],
    *,
    session: boto3.Session,
    settings: Settings | None = None,
    instance_type: str | None = None,
    spot: bool = True,
    max_runtime_hours: float | None = None,
    checkpoints: bool = True,
):
    """A ModelTrainer set up as the launcher sets up a job (no VPC: network isolation)."""
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.core.shapes import Tag
    from sagemaker.core.training.configs import (
        CheckpointConfig,
        Compute,
        MetricDefinition,
        Networking,
        OutputDataConfig,
        StoppingCondition,
    )
    from sagemaker.train import ModelTrainer

    settings = settings or from_context(load_context(REPO_ROOT / "cdk.json"))
    instance_type = instance_type or settings.default_instance_type
    if instance_type not in settings.instance_types:
        raise SystemExit(
            f"instance type {instance_type!r} is not allowed by this deployment; "
            f"allowed: {', '.join(settings.instance_types)}"
        )
    if settings.spot == "required" and not spot:
        raise SystemExit("on-demand is not allowed: this deployment runs every job on spot")
    hours = max_runtime_hours or settings.max_runtime_hours
    runtime = max(60, round(hours * 3600))
    launcher_settings(session, outputs.bucket)
    trainer = ModelTrainer(
        sagemaker_session=Session(boto_session=session),
        role=outputs.role_arn,
        training_image=outputs.image_uri,
        base_job_name=base_name(dataset),
        compute=Compute(
            instance_type=instance_type,
            instance_count=1,
            volume_size_in_gb=VOLUME_SIZE_GB,
            enable_managed_spot_training=spot,
        ),
        networking=Networking(
            enable_network_isolation=True, enable_inter_container_traffic_encryption=True
        ),
        stopping_condition=StoppingCondition(
            max_runtime_in_seconds=runtime, max_wait_time_in_seconds=2 * runtime if spot else None
        ),
        output_data_config=OutputDataConfig(
            s3_output_path=models_uri(outputs.bucket), kms_key_id=outputs.kms_key_arn
        ),
        # The job's name is known when the request is sent: launcher_settings adds it.
        checkpoint_config=(
            CheckpointConfig(
                s3_uri=f"s3://{outputs.bucket}/{CHECKPOINTS_PREFIX}", local_path=CHECKPOINT_PATH
            )
            if checkpoints
            else None
        ),
        hyperparameters=dict(hyperparameters),
        environment={MAX_RUNTIME_VARIABLE: str(runtime)},
        tags=[
            Tag(key=TAG_PROJECT, value=PROJECT),
            Tag(key=TAG_DATASET, value=dataset),
            Tag(key=TAG_TRIGGER, value=TRIGGER_SDK),
        ],
    )
    return trainer.with_metric_definitions(
        [MetricDefinition(name=d["Name"], regex=d["Regex"]) for d in metric_definitions()]
    )


def launcher_settings(session: boto3.Session, bucket: str) -> None:
    """What the SDK's classes do not carry, added to its requests (botocore's parameter event):
    a job's checkpoints under ``checkpoints/<job>/``; a tuning job's trials isolated and
    encrypted (v3's tuner drops the trainer's ``Networking`` flags from its trials)."""

    def training_job(params: dict, **_) -> None:
        if "CheckpointConfig" in params:
            params["CheckpointConfig"]["S3Uri"] = checkpoints_uri(bucket, params["TrainingJobName"])

    def tuning_job(params: dict, **_) -> None:
        definition = params["TrainingJobDefinition"]
        definition["EnableNetworkIsolation"] = True
        definition["EnableInterContainerTrafficEncryption"] = True

    events = session.events
    events.register(
        "before-parameter-build.sagemaker.CreateTrainingJob", training_job, f"{PROJECT}-job"
    )
    events.register(
        "before-parameter-build.sagemaker.CreateHyperParameterTuningJob",
        tuning_job,
        f"{PROJECT}-tuning",
    )


def sdk_ranges(tuning: Tuning) -> dict[str, Any]:
    """contract.tuning's checked ranges as the SDK's parameter classes."""
    from sagemaker.core.parameter import (
        CategoricalParameter,
        ContinuousParameter,
        IntegerParameter,
    )

    ranges: dict[str, Any] = {}
    for r in tuning.ranges:
        if r.kind == CATEGORICAL:
            ranges[r.name] = CategoricalParameter(list(r.values))
        else:
            kind = ContinuousParameter if r.kind == CONTINUOUS else IntegerParameter
            ranges[r.name] = kind(r.low, r.high, scaling_type=r.scaling)
    return ranges


def hyperparameter_tuner(trainer, tuning: Tuning, dataset: str):
    """A HyperparameterTuner over a trainer made with ``checkpoints=False``: a tuning job has one
    definition for all its trials, which would share (and resume) one checkpoint prefix."""
    from sagemaker.train.tuner import HyperparameterTuner

    if trainer.checkpoint_config is not None:
        raise ValueError("tune with model_trainer(..., checkpoints=False): trials share a prefix")
    return HyperparameterTuner(
        model_trainer=trainer,
        objective_metric_name=tuning.objective,
        objective_type=tuning.direction,
        metric_definitions=metric_definitions(),
        hyperparameter_ranges=sdk_ranges(tuning),
        strategy=tuning.strategy,
        max_jobs=tuning.max_jobs,
        max_parallel_jobs=tuning.max_parallel_jobs,
        early_stopping_type=tuning.early_stopping,
        base_tuning_job_name=base_name(dataset),  # the SDK cuts it to fit 32 characters
    )


def _pairs(texts: Sequence[str], flag: str) -> dict[str, str]:
    pairs = {}
    for text in texts:
        name, sep, value = text.partition("=")
        if not sep or not name.strip():
            raise SystemExit(f"{flag} {text!r} is not NAME=VALUE")
        pairs[name.strip()] = value.strip()
    return pairs


def arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", help="the dataset's name: s3://<bucket>/datasets/<name>/")
    parser.add_argument("--hp", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--instance-type", help="default: detrain:defaultInstanceType")
    parser.add_argument("--no-spot", dest="spot", action="store_false", help="on-demand")
    parser.add_argument("--max-runtime-hours", type=float)
    parser.add_argument("--wait", action="store_true", help="wait for the job, printing its log")
    tune = parser.add_argument_group("a tuning job instead (ranges as in `detrain tune`)")
    tune.add_argument("--tune", action="store_true")
    tune.add_argument("--range", action="append", default=[], metavar="NAME=LOW:HIGH[:SCALING]")
    tune.add_argument("--objective", default="valid_map")
    tune.add_argument("--strategy", default="Bayesian")
    tune.add_argument("--max-jobs", type=int)
    tune.add_argument("--max-parallel-jobs", type=int)
    stack = parser.add_argument_group("the stack (default: its outputs, from DescribeStacks)")
    stack.add_argument("--stack", default=STACK_NAME)
    for name in ("image", "role", "bucket", "kms-key"):
        stack.add_argument(f"--{name}")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, session: boto3.Session | None = None) -> str:
    """Start the job (or tuning job); its name."""
    args = arguments(argv)
    session = session or boto3.Session()
    given = (args.image, args.role, args.bucket, args.kms_key)
    outputs = StackOutputs(*given) if all(given) else stack_outputs(session, args.stack)
    settings = from_context(load_context(REPO_ROOT / "cdk.json"))
    hyperparameters = typed_hyperparameters(_pairs(args.hp, "--hp"))
    options = dict(
        session=session,
        settings=settings,
        instance_type=args.instance_type,
        spot=args.spot and settings.spot != "off",
        max_runtime_hours=args.max_runtime_hours,
    )
    if not args.tune:
        trainer = model_trainer(outputs, args.dataset, hyperparameters, **options)
        trainer.train(input_data_config=[dataset_input(outputs, args.dataset)], wait=args.wait)
        name = trainer._latest_training_job.training_job_name  # v3 keeps the job there
        print(f"training job {name}")
        return name
    ranges = {n: range_from_text(n, t) for n, t in _pairs(args.range, "--range").items()}
    body = {"objective": args.objective, "strategy": args.strategy, "ranges": ranges}
    body |= {"max_jobs": args.max_jobs, "max_parallel_jobs": args.max_parallel_jobs}
    tuning = parse_tuning(
        body,
        hyperparameters,
        max_jobs_cap=settings.max_tuning_jobs,
        max_parallel_cap=settings.max_parallel_tuning_jobs,
    )
    trainer = model_trainer(outputs, args.dataset, hyperparameters, checkpoints=False, **options)
    tuner = hyperparameter_tuner(trainer, tuning, args.dataset)
    tuner.tune(inputs=[dataset_input(outputs, args.dataset)], wait=args.wait)
    name = tuner.latest_tuning_job.hyper_parameter_tuning_job_name
    print(f"tuning job {name}")
    return name


if __name__ == "__main__":
    try:
        main()
    except ValueError as error:  # a hyperparameter or a range the contract refuses
        raise SystemExit(f"error: {error}") from None

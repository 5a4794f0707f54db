"""Commands that run on this machine alone: ``rehearse`` and ``local-train``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from contract.metrics import SELECTABLE
from contract.names import check_job_name
from contract.tuning import STRATEGIES
from detrain import hyperparameter_options
from detrain.cli_error import CliError
from detrain.hyperparameter_options import hyperparameter_strings
from trainer.sample_data import DEFAULT_IMAGES as SAMPLE_IMAGES

REHEARSAL_FOLDER = Path(".rehearsal")
LOCAL_RUNS_FOLDER = Path(".local-runs")
MAX_LOCAL_HOSTS = 8


def register(subcommands: argparse._SubParsersAction) -> None:
    rehearse = subcommands.add_parser(
        "rehearse",
        help="run the whole upload -> launch -> train flow on this machine (no AWS, no Docker)",
        description=(
            "Start an emulated AWS (moto) on loopback, create what the stack creates, upload a "
            "sample dataset (or yours) with its trigger object, hand the S3 event to the "
            "launcher function, run the job it created with the local runner, and summarize."
        ),
    )
    rehearse.add_argument(
        "--dataset", type=Path, help="rehearse with this dataset folder instead of the sample"
    )
    rehearse.add_argument(
        "--images",
        type=int,
        default=SAMPLE_IMAGES,
        help=f"images in the sample dataset (default {SAMPLE_IMAGES})",
    )
    hyperparameter_options.add_option(
        rehearse, "a hyperparameter for the trigger object, over the rehearsal's fast defaults"
    )
    rehearse.add_argument(
        "--instance-count",
        type=int,
        help="ask the launcher for this many instances; each runs as a local process",
    )
    rehearse.add_argument(
        "--serve",
        action="store_true",
        help="go on past training: deploy to the emulator, answer InvokeEndpoint from the local "
        "model server (detrain invoke), and run a batch transform over a folder",
    )
    rehearse.add_argument(
        "--workdir",
        type=Path,
        default=REHEARSAL_FOLDER,
        help=f"where the run's files stay (default {REHEARSAL_FOLDER}/)",
    )
    tune = rehearse.add_argument_group(
        "a tuning job (--tune): trials drawn within the ranges, run one after another"
    )
    tune.add_argument(
        "--tune",
        action="store_true",
        help="rehearse a tuning job (default: 3 trials, learning_rate=1e-4:1e-2:log, Random)",
    )
    tune.add_argument(
        "--range", action="append", default=[], metavar="NAME=SPEC", help="as `detrain tune`"
    )
    tune.add_argument("--objective", choices=tuple(SELECTABLE), help="default valid_map")
    tune.add_argument("--strategy", choices=STRATEGIES, help="default Random")
    tune.add_argument("--max-jobs", type=int, help="trials (default 3; Grid: every combination)")
    rehearse.set_defaults(func=_rehearse)

    train = subcommands.add_parser(
        "local-train",
        help="train on a dataset folder of this machine, as a SageMaker job would",
        description=(
            "Lay out /opt/ml for the folder as SageMaker does and run the trainer "
            "(training_image/train train), or the real image with --docker. No AWS needed."
        ),
    )
    train.add_argument(
        "dataset",
        type=Path,
        help="dataset folder: COCO, Pascal VOC, YOLO or a Ground Truth manifest (docs/datasets.md)",
    )
    train.add_argument("--validation", type=Path, help="a separate validation dataset folder")
    hyperparameter_options.add_option(train)
    train.add_argument(
        "--workdir",
        type=Path,
        default=LOCAL_RUNS_FOLDER,
        help=f"where runs are kept (default {LOCAL_RUNS_FOLDER}/)",
    )
    train.add_argument("--name", help="job name (default local-<dataset>-<time>)")
    train.add_argument(
        "--instance-count",
        type=int,
        default=1,
        help="hosts, each a local process on loopback (default 1)",
    )
    train.add_argument("--docker", metavar="IMAGE", help="run this image with Docker instead")
    train.add_argument("--gpus", help="with --docker: passed to docker run --gpus (e.g. all)")
    train.set_defaults(func=_local_train)


def quiet_libraries(verbose: bool) -> None:
    if verbose:
        return
    for name in ("botocore", "boto3", "werkzeug", "urllib3", "s3transfer"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _report(result) -> int:
    from detrain.run_summary import format_summary

    print(format_summary(result), flush=True)
    return 0 if result.succeeded else 1


def _local_train(args: argparse.Namespace) -> int:
    from detrain.local_runner import LocalRunner
    from detrain.training_job import for_local_folder

    if args.gpus and not args.docker:
        raise CliError("--gpus is for --docker runs; a local process uses this machine's GPUs")
    hyperparameters = hyperparameter_strings(args.hp)
    quiet_libraries(args.verbose)
    job = for_local_folder(
        args.dataset,
        hyperparameters=hyperparameters,
        run_folder=args.workdir,
        validation=args.validation,
        name=check_job_name(args.name) if args.name else None,
        instance_count=_instance_count(args.instance_count),
    )
    runner = LocalRunner(args.workdir, docker_image=args.docker, gpus=args.gpus)
    try:
        return _report(runner.run(job))
    except FileNotFoundError as error:
        if args.docker and error.filename == "docker":
            raise CliError("--docker needs the docker command, which is not installed") from None
        raise


def _instance_count(count: int) -> int:
    if not 1 <= count <= MAX_LOCAL_HOSTS:
        raise CliError(
            f"--instance-count {count} is not allowed; allowed: 1 to {MAX_LOCAL_HOSTS} locally"
        )
    return count


def _rehearse(args: argparse.Namespace) -> int:
    from detrain import rehearsal

    if args.dataset is not None and not args.dataset.is_dir():
        raise CliError(f"--dataset {str(args.dataset)!r} is not a folder")
    if args.images < 2:
        raise CliError(f"--images {args.images} is too few; allowed: 2 or more")
    overrides = hyperparameter_strings(args.hp)
    quiet_libraries(args.verbose)
    if args.instance_count is not None:
        _instance_count(args.instance_count)
    if args.tune or args.range:
        if args.serve:
            raise CliError("--serve follows a single job; a tuning rehearsal has no --serve")
        return _rehearse_tuning(args, overrides)
    serving = None
    if args.serve:
        from detrain.serving_rehearsal import ServingRehearsal

        serving = ServingRehearsal(args.workdir)
    result = rehearsal.rehearse(
        args.workdir,
        dataset=args.dataset,
        instance_count=args.instance_count,
        images=args.images,
        hyperparameters=overrides,
        out=sys.stdout,
        then=serving,
    )
    code = _report(result)
    if serving is not None and serving.outcome is not None:
        print(serving.outcome.summary(), flush=True)
    return code


def _rehearse_tuning(args: argparse.Namespace, overrides: dict[str, str]) -> int:
    from detrain import tuning_rehearsal, tuning_summary
    from detrain.tune_commands import ranges_from_words

    if args.instance_count is not None:
        raise CliError("--instance-count is for a single job; a tuning rehearsal runs one host")
    block = dict(tuning_rehearsal.REHEARSAL_TUNING)
    if args.range:
        block["ranges"] = ranges_from_words(args.range)
    given = {"objective": args.objective, "strategy": args.strategy, "max_jobs": args.max_jobs}
    block.update({k: v for k, v in given.items() if v is not None})
    if block["strategy"] == "Grid" and args.max_jobs is None:
        del block["max_jobs"]  # every combination
    outcome = tuning_rehearsal.rehearse_tuning(
        args.workdir,
        tuning=block,
        dataset=args.dataset,
        images=args.images,
        hyperparameters=overrides,
        out=sys.stdout,
    )
    for trial in outcome.trials:
        value = tuning_summary.objective_of(trial)
        shown = f"{value:.4g}" if value is not None else "-"
        print(f"{trial['TrainingJobName']}  {trial['TrainingJobStatus']:<10} {shown}")
    best = outcome.best["TrainingJobName"] if outcome.best else "none"
    print(f"best trial {best}\nsummary   {outcome.summary}", flush=True)
    return 0 if outcome.succeeded else 1

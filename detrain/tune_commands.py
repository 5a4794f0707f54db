"""``detrain tune``: a tuning job through the deployed launcher, as a console request.

The request is ``detrain launch``'s with a ``tuning`` block (contract/tuning.py), so the
same JSON works in the Lambda console's Test and in a trigger object. It is checked here by
the contract's rules, then against the deployed launcher's caps, before it is sent.
"""

from __future__ import annotations

import argparse
from typing import Any

from contract.metrics import SELECTABLE
from contract.tuning import (
    DEFAULT_STRATEGY,
    EARLY_STOPPING,
    STRATEGIES,
    TuningError,
    parse,
    range_from_text,
)
from detrain import aws_calls
from detrain.job_commands import override_options, overrides_from, send_request
from launch_training.tuning_request import requested_tuning_job_name

# The contract's own ceilings (RANGES of contract/launcher_settings.py): the deployment's
# caps are checked once its settings are read.
_LOCAL_JOBS_CAP, _LOCAL_PARALLEL_CAP = 500, 100


def ranges_from_words(words: list[str]) -> dict[str, Any]:
    """``--range NAME=SPEC`` words -> the tuning block's ``ranges``."""
    ranges: dict[str, Any] = {}
    for word in words:
        name, sep, text = word.partition("=")
        if not sep or not name.strip():
            raise TuningError(f"--range {word!r} is not NAME=LOW:HIGH[:SCALING] or NAME=V1,V2,...")
        ranges[name.strip()] = range_from_text(name.strip(), text)
    return ranges


def tuning_block(args: argparse.Namespace) -> dict[str, Any]:
    """The request's ``tuning`` object, from the command line."""
    ranges = ranges_from_words(args.range)
    block: dict[str, Any] = {
        "objective": args.objective,
        "strategy": args.strategy,
        "ranges": ranges,
        "max_jobs": args.max_jobs,
        "max_parallel_jobs": args.parallel,
        "early_stopping": args.early_stopping,
    }
    return {k: v for k, v in block.items() if v is not None}


def tune_request(args: argparse.Namespace) -> dict[str, Any]:
    """The console request ``detrain tune`` sends, checked by the contract's rules."""
    overrides = overrides_from(args)
    if args.job_name:
        requested_tuning_job_name(args.job_name)
    tuning = tuning_block(args)
    checked(tuning, overrides.get("hyperparameters") or {}, _LOCAL_JOBS_CAP, _LOCAL_PARALLEL_CAP)
    return {"dataset": args.dataset, **overrides, "tuning": tuning}


def checked(tuning: dict[str, Any], static: dict[str, Any], jobs_cap: int, parallel_cap: int):
    return parse(tuning, static, max_jobs_cap=jobs_cap, max_parallel_cap=parallel_cap)


def _tune(args: argparse.Namespace) -> int:
    request = tune_request(args)
    static = request.get("hyperparameters") or {}

    def within_the_deployments_caps(settings) -> None:
        checked(
            request["tuning"], static, settings.max_tuning_jobs, settings.max_parallel_tuning_jobs
        )

    parallel = checked(request["tuning"], static, _LOCAL_JOBS_CAP, _LOCAL_PARALLEL_CAP)
    return send_request(
        args, request, within_the_deployments_caps, parallel=parallel.max_parallel_jobs
    )


def _early_stopping(raw: str) -> str:
    for choice in EARLY_STOPPING:
        if raw.lower() == choice.lower():
            return choice
    raise argparse.ArgumentTypeError(f"{raw!r} is not one of {', '.join(EARLY_STOPPING)}")


def register(subcommands: argparse._SubParsersAction) -> None:
    cmd = subcommands.add_parser(
        "tune",
        parents=[aws_calls.aws_options(), override_options()],
        help="start a hyperparameter tuning job on an uploaded dataset (through the launcher)",
        description="Invoke the deployed launcher with a console request that has a 'tuning' "
        "block: one SageMaker tuning job whose trials are the job `detrain launch` would "
        "start, with the --range hyperparameters varied. Example: detrain tune fridge "
        "--range learning_rate=1e-4:1e-2:log --range image_size=384,512 --max-jobs 6 "
        "--parallel 2. See docs/tuning.md.",
    )
    cmd.add_argument("dataset", help="NAME, datasets/NAME/ or s3://<bucket>/datasets/NAME/")
    cmd.add_argument(
        "--range",
        action="append",
        default=[],
        required=True,
        metavar="NAME=SPEC",
        help="a tuned hyperparameter, repeatable: NAME=LOW:HIGH[:SCALING] (scaling: Auto, "
        "Linear, Logarithmic or log, ReverseLogarithmic) or NAME=V1,V2,... (its values)",
    )
    cmd.add_argument(
        "--objective",
        choices=tuple(SELECTABLE),
        default="valid_map",
        help="the metric to tune for (default valid_map, maximized; losses are minimized)",
    )
    cmd.add_argument(
        "--strategy", choices=STRATEGIES, default=DEFAULT_STRATEGY, help="default Bayesian"
    )
    cmd.add_argument(
        "--max-jobs", type=aws_calls.whole_number, help="trials in all (default 8, or the cap)"
    )
    cmd.add_argument("--parallel", type=aws_calls.whole_number, help="trials at once (default 1)")
    cmd.add_argument(
        "--early-stopping",
        type=_early_stopping,
        help="Auto: SageMaker stops trials unlikely to beat the best so far (default Off)",
    )
    cmd.add_argument("--function", help="launcher function (default: the stack's output)")
    cmd.add_argument(
        "--print-request",
        action="store_true",
        help="print the request (a Lambda console Test event) instead of sending it",
    )
    cmd.set_defaults(func=_tune)

"""The `detrain` command: one entry point, `--help` on every command.

Commands that talk to the deployed stack live in detrain/dataset_commands.py (upload),
detrain/job_commands.py (launch, list, describe, stop, follow, fetch), detrain/tune_commands.py
(tune) and
detrain/doctor_command.py; the ones that look at a trained model in detrain/model_commands.py
(predict, report); the ones that host it in detrain/endpoint_commands.py (deploy, endpoints,
undeploy) and use it in detrain/inference_commands.py (invoke, transform); the ones that run
on this machine alone (local-train, rehearse) in detrain/local_commands.py, and serve in
detrain/serve_command.py. Each module adds
its subcommands with ``register``. A failure the user can act on is turned into its message
here, once (detrain/cli_error.py).
"""

from __future__ import annotations

import argparse
import logging
import sys

from detrain import (
    dataset_commands,
    doctor_command,
    endpoint_commands,
    first_job,
    inference_commands,
    job_commands,
    local_commands,
    model_commands,
    serve_command,
    tune_commands,
)
from detrain.cli_error import CliError, user_message

__all__ = ["CliError", "build_parser", "main"]
log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="detrain",
        description="Train object detectors on Amazon SageMaker, or rehearse it all locally.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    doctor_command.register(subcommands)
    dataset_commands.register(subcommands)
    job_commands.register(subcommands)
    tune_commands.register(subcommands)
    first_job.register(subcommands)
    local_commands.register(subcommands)
    model_commands.register(subcommands)
    endpoint_commands.register(subcommands)
    inference_commands.register(subcommands)
    serve_command.register(subcommands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        message = user_message(error)
        if message is None:
            raise
        log.debug("detrain %s failed", args.command, exc_info=True)  # the traceback, with -v
        print(f"detrain {args.command}: {message}", file=sys.stderr)
        return 2

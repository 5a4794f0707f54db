"""The `detrain` command: one entry point, `--help` on every command.

Commands that talk to the deployed stack live in detrain/operator_commands.py;
the ones that run on this machine alone (local-train, rehearse) in
detrain/local_commands.py. Each module adds its subcommands with ``register``.
"""

from __future__ import annotations

import argparse
import logging
import sys

from detrain import first_job, local_commands, model_commands, operator_commands
from detrain.cli_error import CliError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="detrain",
        description="Train object detectors on Amazon SageMaker, or rehearse it all locally.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    operator_commands.register(subcommands)
    first_job.register(subcommands)
    local_commands.register(subcommands)
    model_commands.register(subcommands)
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
    except CliError as error:
        print(f"detrain {args.command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130

"""``--hp KEY=VALUE``: the one reader of hyperparameters on the command line.

Each value is read as the trainer reads hyperparameters.json (the contract's ``parse``: JSON,
else the raw string) and the whole set is checked by the contract's rules before anything
is uploaded, launched or run.
"""

from __future__ import annotations

import argparse
from typing import Any

from contract.hyperparameters import NAMES, HyperparameterError, parse
from detrain.cli_error import CliError


def add_option(parser: argparse.ArgumentParser, purpose: str = "a hyperparameter") -> None:
    """The ``--hp`` option, the same on every command that takes hyperparameters."""
    parser.add_argument(
        "--hp",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"{purpose}, repeatable; keys: {', '.join(NAMES)}",
    )


def hyperparameter_strings(pairs: list[str]) -> dict[str, str]:
    """``KEY=VALUE`` words -> SageMaker's map of raw strings, checked by the contract."""
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise CliError(f"--hp {pair!r} is not KEY=VALUE; allowed keys: {', '.join(NAMES)}")
        values[key.strip()] = value.strip()
    _checked(values)
    return values


def hyperparameter_values(pairs: list[str]) -> dict[str, Any]:
    """The same words, typed as the trainer reads them (for a console request's JSON)."""
    strings = hyperparameter_strings(pairs)
    checked = _checked(strings)
    return {key: getattr(checked, key) for key in strings}


def _checked(strings: dict[str, str]):
    try:
        return parse(strings)
    except HyperparameterError as error:
        raise CliError(str(error)) from None

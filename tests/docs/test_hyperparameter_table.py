"""docs/training-image.md's hyperparameter table is held to contract/hyperparameters.py.

The table is what users read; the dataclass is what runs. Every name, in order, each plain
default, each range and each allowed choice of the code must appear in the table's row.
"""

from __future__ import annotations

import re
from dataclasses import MISSING, fields
from pathlib import Path

import pytest

from contract import hyperparameters
from contract.families import FAMILIES
from contract.hyperparameters import Hyperparameters
from contract.metrics import SELECTABLE

DOC = Path(__file__).resolve().parents[2] / "docs" / "training-image.md"
HEADER = "| name | default | allowed |"
EN_DASH = "\u2013"  # the table writes ranges as 1\u20131000


def table_rows() -> dict[str, tuple[str, str]]:
    """name -> (default cell, allowed cell), in the document's order."""
    lines = DOC.read_text().splitlines()
    start = lines.index(HEADER) + 2
    rows: dict[str, tuple[str, str]] = {}
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        name, default, allowed = (cell.strip() for cell in line.strip("|").split("|", 2))
        rows[name.strip("`")] = (default, allowed)
    return rows


def _number(value: float) -> str:
    """How the table writes a range end: 1000 -> "1000" or "1,000", 1e-07 -> "1e-7"."""
    if float(value).is_integer() and abs(value) >= 1:
        return str(int(value))
    return f"{value:g}".replace("e-0", "e-")


def _number_pattern(value: float) -> str:
    text = _number(value)
    with_commas = f"{value:,.0f}" if float(value).is_integer() else text
    return f"({re.escape(text)}|{re.escape(with_commas)})"


ROWS = table_rows()
FIELDS = {field.name: field for field in fields(Hyperparameters)}


def test_the_table_lists_every_hyperparameter_in_order() -> None:
    assert list(ROWS) == list(hyperparameters.NAMES)


@pytest.mark.parametrize(
    "name",
    [
        name
        for name, field in FIELDS.items()
        if field.default is not MISSING and field.default not in (None, "")
    ],
)
def test_each_plain_default_is_in_its_row(name: str) -> None:
    default = FIELDS[name].default
    if isinstance(default, bool):
        shown = str(default).lower()
    elif isinstance(default, str):
        shown = default
    else:
        shown = _number(default)
    assert shown in ROWS[name][0], f"{name}: default {shown!r} not in {ROWS[name][0]!r}"


@pytest.mark.parametrize("name", list(hyperparameters._RANGES))
def test_each_range_is_in_its_row(name: str) -> None:
    low, high = hyperparameters._RANGES[name]
    pattern = rf"{_number_pattern(low)}( \(off\))?\s*{EN_DASH}\s*{_number_pattern(high)}"
    assert re.search(pattern, ROWS[name][1]), f"{name}: {low} to {high} not in {ROWS[name][1]!r}"


CHOICES = {
    "model": tuple(FAMILIES),
    "backbone": tuple(b for family in FAMILIES.values() for b in family.backbones),
    "select_metric": tuple(SELECTABLE),
    **hyperparameters._CHOICES,
}


@pytest.mark.parametrize("name", sorted(CHOICES))
def test_each_allowed_choice_is_in_its_row(name: str) -> None:
    missing = [c for c in CHOICES[name] if f"`{c}`" not in ROWS[name][1]]
    assert not missing, f"{name}: {missing} not in the table's allowed column"

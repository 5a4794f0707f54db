"""The per-epoch metrics line: the trainer prints it, SageMaker's MetricDefinitions parse it.

One line per epoch, in a fixed ``key=value`` form::

    [metrics] epoch=3 train_loss=0.4123 valid_loss=0.3981 valid_map=0.251 valid_map_50=0.48
        lr=0.0095 epoch_seconds=41.2

(shown wrapped here; it is one line in the log).

Each metric's regex captures its value as the first group (SageMaker's rule);
tests run the regexes against the trainer's real log output.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

LINE_PREFIX = "[metrics]"
# Order is the order on the line; every name is a key the trainer must supply.
METRIC_NAMES: tuple[str, ...] = (
    "epoch",
    "train_loss",
    "valid_loss",
    "valid_map",
    "valid_map_50",
    "lr",
    "epoch_seconds",
)
# The metrics a job can select its model by (``select_metric``): True where higher is better.
SELECTABLE: dict[str, bool] = {
    "valid_map": True,
    "valid_map_50": True,
    "valid_loss": False,
    "train_loss": False,
}
_NUMBER = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan)"


def format_line(values: Mapping[str, float]) -> str:
    """The metrics line for one epoch. Raises KeyError naming a missing metric."""
    parts = []
    for name in METRIC_NAMES:
        value = values[name]
        parts.append(f"{name}={int(value)}" if name == "epoch" else f"{name}={float(value):.6g}")
    return " ".join([LINE_PREFIX, *parts])


def metric_definitions() -> list[dict[str, str]]:
    """CreateTrainingJob's AlgorithmSpecification.MetricDefinitions for the line above."""
    prefix = re.escape(LINE_PREFIX)
    return [{"Name": name, "Regex": rf"{prefix}.*?\b{name}={_NUMBER}"} for name in METRIC_NAMES]


def parse_line(line: str) -> dict[str, float] | None:
    """The values on a metrics line, as SageMaker would extract them; None for other lines."""
    if LINE_PREFIX not in line:
        return None
    found = {}
    for definition in metric_definitions():
        match = re.search(definition["Regex"], line)
        if match:
            found[definition["Name"]] = float(match.group(1))
    return found

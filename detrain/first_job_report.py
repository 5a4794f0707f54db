"""The first job's report: which GPU, driver and forward-compatibility decision a real host gave,
how fast a step ran, and what the job billed.

Read from the job's log (its CloudWatch stream, or the local runner's log file) and from
DescribeTrainingJob. A value the log does not hold is reported as missing, never guessed.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field

from contract import metrics
from contract.startup_log import NONE, parse_device, parse_forward_compat
from detrain import instance_prices

# trainer/preflight.py: "Preflight passed: 0.376 s per training step, 0.294 s per validation step"
_PREFLIGHT = re.compile(r"Preflight passed: ([0-9.]+) s per training step")
# trainer/main.py: "Start training: epochs 1 to 30, 9 steps each"
_STEPS_PER_EPOCH = re.compile(r"Start training: epochs \d+ to \d+, (\d+) steps each")
MISSING = "not in the log"


@dataclass(frozen=True)
class LogFindings:
    """What the trainer's start-up and epochs said (the first of each line; None: not there)."""

    device: dict[str, str] | None = None
    forward_compat: dict[str, str] | None = None
    preflight_step_seconds: float | None = None
    steps_per_epoch: int | None = None
    epoch_seconds: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class JobOutcome:
    """DescribeTrainingJob's answer (or the local runner's), as the report needs it."""

    job_name: str
    instance_type: str
    spot: bool
    status: str
    failure_reason: str | None
    billable_seconds: int | None
    billable_note: str = ""  # why there is no figure, or where it came from


def read_log(text: str) -> LogFindings:
    device = forward_compat = preflight = steps = None
    epoch_seconds: list[float] = []
    for line in text.splitlines():
        device = device or parse_device(line)
        forward_compat = forward_compat or parse_forward_compat(line)
        if preflight is None and (match := _PREFLIGHT.search(line)):
            preflight = float(match.group(1))
        if steps is None and (match := _STEPS_PER_EPOCH.search(line)):
            steps = int(match.group(1))
        values = metrics.parse_line(line)
        if values and "epoch_seconds" in values:
            epoch_seconds.append(values["epoch_seconds"])
    return LogFindings(device, forward_compat, preflight, steps, epoch_seconds)


def gpu_text(found: LogFindings) -> str:
    if found.device is None:
        return MISSING
    device = found.device
    if device["gpu"] == NONE:
        return f"none ({device['device']})"
    return f"{device['gpu']} ({device['device']}, {device['memory']})"


def driver_text(found: LogFindings) -> str:
    if found.device is not None:
        return found.device["driver"]
    if found.forward_compat is not None:
        return found.forward_compat["host"]
    return MISSING


def forward_compat_text(found: LogFindings) -> str:
    decision = found.forward_compat
    if decision is None:
        return MISSING
    return (
        f"{decision['verdict']} (host driver {decision['host']}, compat package "
        f"{decision['compat']}: {decision['reason']})"
    )


def step_time_text(found: LogFindings) -> str:
    parts = []
    if found.preflight_step_seconds is not None:
        parts.append(f"{found.preflight_step_seconds:.3f} s a training step (preflight, one step)")
    if found.epoch_seconds:
        epoch = statistics.median(found.epoch_seconds)
        count = len(found.epoch_seconds)
        text = f"{epoch:.2f} s an epoch (median of {count})"
        if found.steps_per_epoch:
            per_step = epoch / found.steps_per_epoch
            steps = f"{found.steps_per_epoch} step{'s' * (found.steps_per_epoch != 1)}"
            text += f": {steps}, {per_step:.3f} s a step with validation"
        parts.append(text)
    return "; ".join(parts) or f"{MISSING} (no preflight or epoch ran)"


def billable_text(outcome: JobOutcome) -> str:
    if outcome.billable_seconds is None:
        return f"n/a ({outcome.billable_note})" if outcome.billable_note else "n/a"
    text = f"{outcome.billable_seconds} s"
    hourly = instance_prices.price(outcome.instance_type)
    if hourly is not None:
        cost = outcome.billable_seconds * hourly / 3600
        bound = "at most" if outcome.spot else "about"
        text += (
            f": {bound} ${cost:.3f} at {outcome.instance_type}'s on-demand ${hourly}/h "
            f"({instance_prices.PRICES_SOURCE})"
        )
    return text


def format_report(outcome: JobOutcome, found: LogFindings) -> str:
    purchase = "spot" if outcome.spot else "on-demand"
    rows = [
        ("job", f"{outcome.job_name}: {outcome.status}"),
        ("instance", f"1 x {outcome.instance_type} ({purchase})"),
        ("GPU", gpu_text(found)),
        ("driver", driver_text(found)),
        ("forward compat", forward_compat_text(found)),
        ("step time", step_time_text(found)),
        ("billable", billable_text(outcome)),
    ]
    if outcome.failure_reason:
        rows.append(("failure", outcome.failure_reason))
    if found.forward_compat and found.forward_compat["verdict"] == "too old":
        rows.append(
            (
                "next",
                "this host's driver is older than NVIDIA supports with the image's compat "
                "package: use another instance family (docs/first-deploy.md, 'too old')",
            )
        )
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)

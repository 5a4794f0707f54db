"""A tuning job's trials as the local rehearsal runs them: drawn, named, scored, ranked (pure).

Drawing follows SageMaker's ranges (contract/tuning.py): Random draws each value uniformly,
log-uniformly (Logarithmic) or near 1 (ReverseLogarithmic) within [min, max], and a
categorical value with equal chances; Grid lists every combination. Bayesian and Hyperband
are SageMaker's own optimizers: here their trials are drawn at random too, and ``draw`` says
so. Auto scaling is drawn linearly here (SageMaker picks the scale itself).

The objective is read as SageMaker reads it: the objective's MetricDefinitions regex applied to
each log line, the last value found being the trial's final objective
(FinalHyperParameterTuningJobObjectiveMetric: "the latest objective metric emitted").
https://docs.aws.amazon.com/sagemaker/latest/dg/automatic-model-tuning-how-it-works.html
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from contract.hyperparameters import TUNING_OBJECTIVE_KEY
from contract.tuning import CATEGORICAL, CONTINUOUS, INTEGER, ParameterRange, Tuning

TRIAL_HASH_CHARS = 8
_KINDS = {"ContinuousParameterRanges": CONTINUOUS, "IntegerParameterRanges": INTEGER}


def from_config(config: Mapping[str, Any]) -> Tuning:
    """The HyperParameterTuningJobConfig SageMaker holds -> the Tuning it describes."""
    ranges = []
    for key, entries in config.get("ParameterRanges", {}).items():
        for entry in entries:
            if key == "CategoricalParameterRanges":
                ranges.append(
                    ParameterRange(entry["Name"], CATEGORICAL, values=tuple(entry["Values"]))
                )
                continue
            number = int if _KINDS[key] == INTEGER else float
            ranges.append(
                ParameterRange(
                    entry["Name"],
                    _KINDS[key],
                    low=number(entry["MinValue"]),
                    high=number(entry["MaxValue"]),
                    scaling=entry.get("ScalingType", "Auto"),
                )
            )
    objective = config["HyperParameterTuningJobObjective"]
    limits = config.get("ResourceLimits", {})
    grid = math.prod(len(r.values) for r in ranges)
    return Tuning(
        objective=objective["MetricName"],
        direction=objective["Type"],
        strategy=config.get("Strategy", "Bayesian"),
        ranges=tuple(ranges),
        max_jobs=limits.get("MaxNumberOfTrainingJobs", grid),
        max_parallel_jobs=limits.get("MaxParallelTrainingJobs", 1),
        early_stopping=config.get("TrainingJobEarlyStoppingType", "Off"),
    )


def draw(tuning: Tuning, seed: int = 0) -> tuple[list[dict[str, str]], str]:
    """Each trial's tuned hyperparameters (strings, as SageMaker passes them), and how they
    were drawn, in words."""
    if tuning.strategy == "Grid":
        names = [r.name for r in tuning.ranges]
        grid = itertools.product(*(r.values for r in tuning.ranges))
        return [dict(zip(names, values, strict=True)) for values in grid], "every combination"
    rng = random.Random(seed)
    trials = [{r.name: _value(r, rng) for r in tuning.ranges} for _ in range(tuning.max_jobs)]
    how = "drawn at random within the ranges"
    if tuning.strategy != "Random":
        how += (
            f" (SageMaker's {tuning.strategy} strategy picks each trial from the earlier ones' "
            "results; the local rehearsal cannot, so it draws them as Random would"
            + (", and runs each for every epoch" if tuning.strategy == "Hyperband" else "")
            + ")"
        )
    return trials, how


def _value(r: ParameterRange, rng: random.Random) -> str:
    if r.kind == CATEGORICAL:
        return rng.choice(r.values)
    low, high = float(r.low), float(r.high)
    if r.kind == INTEGER:
        if r.scaling == "Logarithmic":  # log-uniform over [low, high + 1), floored
            drawn = math.exp(rng.uniform(math.log(low), math.log(high + 1)))
            return str(min(int(high), max(int(low), math.floor(drawn))))
        return str(rng.randint(int(low), int(high)))
    if r.scaling == "Logarithmic":
        return str(math.exp(rng.uniform(math.log(low), math.log(high))))
    if r.scaling == "ReverseLogarithmic":
        return str(1 - math.exp(rng.uniform(math.log(1 - high), math.log(1 - low))))
    return str(rng.uniform(low, high))


def trial_name(tuning_job: str, number: int, tuned: Mapping[str, str]) -> str:
    """``<tuning job>-<NNN>-<8 hex>``, the form of SageMaker's trial names."""
    digest = hashlib.sha256(repr(sorted(tuned.items())).encode()).hexdigest()
    return f"{tuning_job}-{number:03d}-{digest[:TRIAL_HASH_CHARS]}"


def trial_hyperparameters(
    static: Mapping[str, str], tuned: Mapping[str, str], objective: str
) -> dict[str, str]:
    """What a trial's container gets: the static ones, the tuned ones, and the objective's
    name under ``_tuning_objective_metric`` (SageMaker adds it)."""
    return {**static, **tuned, TUNING_OBJECTIVE_KEY: objective}


def final_metric(
    lines: Iterable[str], definitions: Sequence[Mapping[str, str]], name: str
) -> float | None:
    """The last value the ``name`` metric's regex captures in the log; None if none does."""
    regex = next((d["Regex"] for d in definitions if d["Name"] == name), None)
    if regex is None:
        raise ValueError(
            f"metric {name!r} has no MetricDefinitions entry; defined: "
            f"{', '.join(d['Name'] for d in definitions)}"
        )
    pattern, found = re.compile(regex), None
    for line in lines:
        match = pattern.search(line)
        if match:
            found = float(match.group(1))
    return found


def best(trials: Sequence[Mapping[str, Any]], direction: str) -> Mapping[str, Any] | None:
    """The trial with the best final objective (the first of equals); None when none has one."""
    scored = [
        t
        for t in trials
        if t.get("ObjectiveStatus") == "Succeeded"
        and math.isfinite(t["FinalHyperParameterTuningJobObjectiveMetric"]["Value"])
    ]
    if not scored:
        return None
    sign = -1 if direction == "Maximize" else 1
    return min(
        scored, key=lambda t: sign * t["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
    )

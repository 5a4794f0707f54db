"""A tuning request: its objective, strategy, ranges and limits, checked against the contract.

The ``tuning`` block of a launch request (console Test, ``detrain tune``, a trigger's body)::

    {"objective": "valid_map", "strategy": "Bayesian",
     "ranges": {"learning_rate": {"min": 1e-4, "max": 1e-2, "scaling": "Logarithmic"},
                "image_size": {"values": [384, 512]}},
     "max_jobs": 6, "max_parallel_jobs": 2, "early_stopping": "Auto"}

``parse`` checks it against the hyperparameter table (contract/hyperparameters.py: name, type,
allowed range, the family's image-size multiple) and the metric table (contract/metrics.py:
the objective and its direction); ``tuning_job_config`` writes CreateHyperParameterTuningJob's
HyperParameterTuningJobConfig. Stdlib only: the launcher and the CLI share it. SageMaker's
rules are those of
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_HyperParameterTuningJobConfig.html
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from contract.hyperparameters import (
    NAMES,
    HyperparameterError,
    allowed_range,
    from_values,
    job_string,
    value_type,
)
from contract.metrics import SELECTABLE, metric_definitions

STRATEGIES = ("Bayesian", "Random", "Hyperband", "Grid")
DEFAULT_STRATEGY = "Bayesian"
SCALING_TYPES = ("Auto", "Linear", "Logarithmic", "ReverseLogarithmic")
SCALING_ALIASES = {"log": "Logarithmic", "reverselog": "ReverseLogarithmic"}
EARLY_STOPPING = ("Off", "Auto")
TUNING_JOB_NAME_MAX = 32  # HyperParameterTuningJobName: 1-32 characters
MAX_CATEGORICAL_VALUES = 30  # ParameterValues: at most 30
HYPERBAND_MAX_RESOURCE = 20_000  # HyperbandStrategyConfig.MaxResource: at most 20,000 epochs
FIELDS = ("objective", "strategy", "ranges", "max_jobs", "max_parallel_jobs", "early_stopping")
# Hyperparameters a tuning job may not vary, and why.
NOT_TUNABLE = {
    "model": "tune one model family per tuning job (the image-size rule is the family's)",
    "select_metric": "it chooses which epoch is the model, not how the model trains",
    "seed": "varying the seed measures noise, not a better setting",
    "num_workers": "it changes loading speed, not the model",
    "checkpoint_every_epochs": "it changes checkpointing, not the model",
    "max_bad_images": "it changes what data is skipped, not how the model trains",
}
CONTINUOUS, INTEGER, CATEGORICAL = "Continuous", "Integer", "Categorical"


class TuningError(ValueError):
    """The tuning block is not allowed; the message names the bad value and what is allowed."""


@dataclass(frozen=True)
class ParameterRange:
    """One tuned hyperparameter: numbers from ``low`` to ``high``, or one of ``values``."""

    name: str
    kind: str  # CONTINUOUS, INTEGER or CATEGORICAL
    low: float | int | None = None
    high: float | int | None = None
    scaling: str = "Auto"
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class Tuning:
    objective: str
    direction: str  # "Maximize" | "Minimize"
    strategy: str
    ranges: tuple[ParameterRange, ...]
    max_jobs: int
    max_parallel_jobs: int
    early_stopping: str

    @property
    def tuned(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.ranges)


def objective_direction(metric: str) -> str:
    """Maximize for a score (valid_map), Minimize for a loss: the contract's SELECTABLE table."""
    defined = {d["Name"] for d in metric_definitions()}
    if metric not in SELECTABLE or metric not in defined:
        raise TuningError(
            f"tuning 'objective' = {metric!r} is not a metric to tune for; allowed: "
            f"{', '.join(SELECTABLE)} (the trainer's metric definitions)"
        )
    return "Maximize" if SELECTABLE[metric] else "Minimize"


def parse(
    body: Any, static: Mapping[str, Any], *, max_jobs_cap: int, max_parallel_cap: int
) -> Tuning:
    """The tuning block, checked; ``static`` are the request's fixed hyperparameters."""
    if not isinstance(body, Mapping):
        raise TuningError(f"'tuning' = {body!r:.80} must be a JSON object with {', '.join(FIELDS)}")
    unknown = sorted(str(k) for k in body if k not in FIELDS)
    if unknown:
        allowed = ", ".join(FIELDS)
        raise TuningError(f"'tuning' has unknown field {unknown[0]!r}; allowed: {allowed}")
    objective = body.get("objective", "valid_map")
    direction = objective_direction(objective)
    strategy = _choice("strategy", body.get("strategy") or DEFAULT_STRATEGY, STRATEGIES)
    early_stopping = _choice("early_stopping", body.get("early_stopping") or "Off", EARLY_STOPPING)
    ranges = body.get("ranges")
    if not isinstance(ranges, Mapping) or not ranges:
        raise TuningError(
            "'tuning' needs 'ranges': a JSON object of hyperparameter -> "
            '{"min": .., "max": .., "scaling": ..} or {"values": [..]}'
        )
    parsed = tuple(_range(str(name), spec, static) for name, spec in ranges.items())
    _check_strategy(strategy, early_stopping, parsed, static)
    combinations = math.prod(len(r.values) for r in parsed) if strategy == "Grid" else None
    max_jobs = _count("max_jobs", body.get("max_jobs"), combinations or min(8, max_jobs_cap))
    if combinations is not None and max_jobs != combinations:
        raise TuningError(
            f"'max_jobs' = {max_jobs}: a Grid search runs every combination of its values, "
            f"{combinations} here; leave 'max_jobs' out or set it to {combinations}"
        )
    if max_jobs > max_jobs_cap:
        what = "a Grid search of" if combinations is not None else "'max_jobs' ="
        raise TuningError(
            f"{what} {max_jobs} training jobs is not allowed by this deployment; allowed: 1 to "
            f"{max_jobs_cap} (detrain:maxTuningJobs)"
        )
    parallel = _count("max_parallel_jobs", body.get("max_parallel_jobs"), 1)
    if parallel > max_parallel_cap or parallel > max_jobs:
        raise TuningError(
            f"'max_parallel_jobs' = {parallel} is not allowed; allowed: 1 to "
            f"{min(max_parallel_cap, max_jobs)} (at most 'max_jobs' = {max_jobs} and "
            f"this deployment's {max_parallel_cap}, detrain:maxParallelTuningJobs)"
        )
    return Tuning(objective, direction, strategy, parsed, max_jobs, parallel, early_stopping)


def tuning_job_config(tuning: Tuning, epochs: int) -> dict[str, Any]:
    """CreateHyperParameterTuningJob's HyperParameterTuningJobConfig; ``epochs`` is the static
    epoch count (Hyperband's MaxResource)."""
    ranges: dict[str, list[dict[str, Any]]] = {}
    for r in tuning.ranges:
        if r.kind == CATEGORICAL:
            entry: dict[str, Any] = {"Name": r.name, "Values": list(r.values)}
        else:
            entry = {
                "Name": r.name,
                "MinValue": job_string(r.low),
                "MaxValue": job_string(r.high),
                "ScalingType": r.scaling,
            }
        ranges.setdefault(f"{r.kind}ParameterRanges", []).append(entry)
    limits: dict[str, int] = {"MaxParallelTrainingJobs": tuning.max_parallel_jobs}
    if tuning.strategy != "Grid":  # Grid runs every combination: SageMaker counts them itself
        limits["MaxNumberOfTrainingJobs"] = tuning.max_jobs
    config: dict[str, Any] = {
        "Strategy": tuning.strategy,
        "HyperParameterTuningJobObjective": {
            "Type": tuning.direction,
            "MetricName": tuning.objective,
        },
        "ResourceLimits": limits,
        "ParameterRanges": ranges,
        "TrainingJobEarlyStoppingType": tuning.early_stopping,
    }
    if tuning.strategy == "Hyperband":
        config["StrategyConfig"] = {
            "HyperbandStrategyConfig": {"MinResource": 1, "MaxResource": epochs}
        }
    return config


def range_from_text(name: str, text: str) -> dict[str, Any]:
    """``detrain tune --range``'s text -> the JSON range: ``LOW:HIGH[:SCALING]`` or
    ``V1,V2,...``. Numbers become JSON numbers; ``parse`` types them by the hyperparameter."""
    if ":" in text:
        parts = [p.strip() for p in text.split(":")]
        if len(parts) not in (2, 3) or not all(parts):
            raise TuningError(
                f"--range {name}={text!r} is not LOW:HIGH or LOW:HIGH:SCALING "
                f"(scaling: {', '.join(SCALING_TYPES)} or log)"
            )
        found = {"min": _typed(parts[0]), "max": _typed(parts[1])}
        return {**found, "scaling": _scaling(name, parts[2])} if len(parts) == 3 else found
    values = [_typed(v.strip()) for v in text.split(",") if v.strip()]
    if not values:
        raise TuningError(f"--range {name}={text!r} has no values; write V1,V2 or LOW:HIGH")
    return {"values": values}


def _typed(text: str) -> int | float | str:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


# ---- checks -------------------------------------------------------------------------------


def _range(name: str, spec: Any, static: Mapping[str, Any]) -> ParameterRange:
    if name not in NAMES:
        raise TuningError(f"tuning range {name!r} is not a hyperparameter; allowed: {_tunable()}")
    if name in NOT_TUNABLE:
        raise TuningError(f"hyperparameter {name!r} cannot be tuned: {NOT_TUNABLE[name]}")
    if name in static:
        raise TuningError(
            f"hyperparameter {name!r} is both fixed ('hyperparameters') and tuned ('ranges'); "
            "remove one"
        )
    keys = set(spec) if isinstance(spec, Mapping) else set()
    if not isinstance(spec, Mapping) or not ({"values"} <= keys or {"min", "max"} <= keys):
        raise TuningError(
            f"tuning range {name!r} = {spec!r:.80} must be "
            '{"min": LOW, "max": HIGH, "scaling": ...} or {"values": [...]}'
        )
    extra = sorted(str(k) for k in spec if k not in ("min", "max", "scaling", "values"))
    if extra or ("values" in spec and {"min", "max", "scaling"} & set(spec)):
        raise TuningError(
            f"tuning range {name!r} mixes or adds fields ({', '.join(map(str, spec))}); allowed: "
            "min, max and scaling, or values alone"
        )
    if "values" in spec:
        return _categorical(name, spec["values"], static)
    return _numeric(name, spec, static)


def _categorical(name: str, values: Any, static: Mapping[str, Any]) -> ParameterRange:
    if not isinstance(values, list) or not values:
        raise TuningError(f"tuning range {name!r}: 'values' must be a non-empty JSON list")
    if len(values) > MAX_CATEGORICAL_VALUES:
        raise TuningError(
            f"tuning range {name!r} has {len(values)} values; SageMaker allows at most "
            f"{MAX_CATEGORICAL_VALUES}"
        )
    strings = tuple(job_string(_checked(name, value, static)) for value in values)
    if len(set(strings)) != len(strings):
        raise TuningError(f"tuning range {name!r} lists a value twice: {', '.join(strings)}")
    return ParameterRange(name, CATEGORICAL, values=strings)


def _numeric(name: str, spec: Mapping[str, Any], static: Mapping[str, Any]) -> ParameterRange:
    kind_of_value = value_type(name)
    if kind_of_value not in (int, float):
        raise TuningError(
            f"hyperparameter {name!r} is not a number: tune it with 'values' "
            f'(e.g. {{"values": [...]}}), not min and max'
        )
    if name == "image_size":
        raise TuningError(
            "hyperparameter 'image_size' must be a multiple of the model family's stride "
            "(32, or 128 for efficientdet): tune it with 'values', e.g. "
            '{"values": [384, 512]}, not min and max'
        )
    kind = INTEGER if kind_of_value is int else CONTINUOUS
    low, high = (_number(name, end, spec[end], kind) for end in ("min", "max"))
    if not low < high:
        raise TuningError(f"tuning range {name!r}: min {low!r} must be below max {high!r}")
    bounds = allowed_range(name)
    if bounds is not None and not (bounds[0] <= low and high <= bounds[1]):
        raise TuningError(
            f"tuning range {name} {low:g} to {high:g} is outside {name}'s allowed range "
            f"{bounds[0]:g} to {bounds[1]:g}"
        )
    for end in (low, high):
        _checked(name, end, static)
    scaling = _scaling(name, spec.get("scaling") or "Auto")
    if scaling == "Logarithmic" and low <= 0:
        raise TuningError(
            f"tuning range {name!r}: Logarithmic scaling needs min > 0 (min is {low:g}); "
            "use Linear or a positive min"
        )
    if scaling == "ReverseLogarithmic" and (kind == INTEGER or not (low >= 0 and high < 1)):
        raise TuningError(
            f"tuning range {name!r}: ReverseLogarithmic scaling needs a continuous range within "
            f"0 <= x < 1 (here {low:g} to {high:g})"
        )
    return ParameterRange(name, kind, low=low, high=high, scaling=scaling)


def _number(name: str, end: str, value: Any, kind: str) -> float | int:
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number):
        raise TuningError(f"tuning range {name!r}: {end} {value!r} must be a number")
    if kind == INTEGER:
        if not number.is_integer():
            raise TuningError(f"tuning range {name!r}: {end} {value!r} must be a whole number")
        return int(number)
    return number


def _checked(name: str, value: Any, static: Mapping[str, Any]) -> Any:
    """A value of the range, typed and checked by the trainer's own rules with the fixed ones."""
    try:
        return getattr(from_values({**static, name: value}), name)
    except HyperparameterError as error:
        raise TuningError(f"tuning range {name!r}: {error}") from None


def _check_strategy(
    strategy: str, early_stopping: str, ranges: tuple[ParameterRange, ...], static: Mapping
) -> None:
    if strategy == "Grid":
        numeric = [r.name for r in ranges if r.kind != CATEGORICAL]
        if numeric:
            raise TuningError(
                f"a Grid search takes only 'values' ranges; {', '.join(numeric)} has min and "
                "max: list its values, or choose Bayesian or Random"
            )
    if strategy == "Hyperband":
        if early_stopping != "Off":
            raise TuningError(
                "'early_stopping' = 'Auto' cannot be used with Hyperband (it stops trials "
                "itself); set 'early_stopping' to 'Off' or choose another strategy"
            )
        if "epochs" in (r.name for r in ranges):
            raise TuningError(
                "Hyperband budgets trials by epochs: fix 'epochs' (its MaxResource) "
                "instead of tuning it"
            )
        epochs = from_values(static).epochs
        if epochs > HYPERBAND_MAX_RESOURCE:
            raise TuningError(f"Hyperband allows at most {HYPERBAND_MAX_RESOURCE} epochs")


def _choice(field: str, value: Any, allowed: tuple[str, ...]) -> str:
    for choice in allowed:
        if isinstance(value, str) and value.strip().lower() == choice.lower():
            return choice
    raise TuningError(f"tuning {field!r} = {value!r} is not allowed; allowed: {', '.join(allowed)}")


def _scaling(name: str, value: Any) -> str:
    text = value.strip().lower() if isinstance(value, str) else value
    if isinstance(text, str) and text in SCALING_ALIASES:
        return SCALING_ALIASES[text]
    try:
        return _choice("scaling", value, SCALING_TYPES)
    except TuningError:
        raise TuningError(
            f"tuning range {name!r}: scaling {value!r} is not allowed; allowed: "
            f"{', '.join(SCALING_TYPES)} (or log)"
        ) from None


def _count(field: str, value: Any, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TuningError(f"tuning {field!r} = {value!r} must be a whole number of at least 1")
    return value


def _tunable() -> str:
    return ", ".join(n for n in NAMES if n not in NOT_TUNABLE)

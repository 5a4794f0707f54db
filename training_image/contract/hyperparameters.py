"""The trainer's hyperparameters: names, types, defaults and allowed values, defined once.

SageMaker hands hyperparameters to the container as a JSON object of strings
(``/opt/ml/input/config/hyperparameters.json``). Two encodings exist: raw strings
(boto3, the console, this project's launcher) and JSON-encoded strings (the
SageMaker Python SDK, which also adds ``sagemaker_*`` keys; a tuning job's trials get
``_tuning_objective_metric``). ``parse`` accepts both and skips those keys;
``to_job_strings`` produces the raw encoding for CreateTrainingJob.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from contract.families import FAMILIES
from contract.metrics import SELECTABLE
from contract.recipes import AUGMENTATIONS, OPTIMIZERS, SCHEDULES, recipe

AMP_DTYPES = ("float16", "bfloat16")
DECODE_ON = ("auto", "cpu", "device")  # where JPEGs are decoded (trainer/device_decode.py)

SAGEMAKER_RESERVED_PREFIX = "sagemaker_"
# A tuning job's trials get this key too: the objective's metric name (not a knob of ours).
TUNING_OBJECTIVE_KEY = "_tuning_objective_metric"
MAX_ENTRIES = 100
MAX_KEY_OR_VALUE_CHARS = 256


class HyperparameterError(ValueError):
    """A hyperparameter is unknown or its value is not allowed; the message names both."""


@dataclass(frozen=True)
class Hyperparameters:
    """Every knob of a training run. Defaults suit a single ml.g5.xlarge.

    Knobs left out (``None`` or empty) take the model family's recipe (contract/recipes.py),
    for pretrained weights or from scratch; ``learning_rate`` is the recipe's scaled to
    ``batch_size``, or ``"auto"``: a learning-rate range test before training (lr_finder.py).
    """

    model: str = "faster_rcnn"
    backbone: str = ""  # empty: the family's default_backbone (contract/families.py)
    pretrained: bool = True
    epochs: int = 20
    batch_size: int = 8
    image_size: int = 512
    learning_rate: float | str | None = None  # a number, "auto", or None: the recipe's
    optimizer: str = ""  # sgd | adamw
    schedule: str = ""  # onecycle | cosine (linear warm-up, then cosine)
    weight_decay: float | None = None
    ema: bool | None = None  # validate and save an exponential moving average of the weights
    ema_decay: float = 0.9998
    augmentation: str = ""  # light | standard | none
    grad_clip_norm: float = 10.0
    seed: int = 42
    num_workers: int = -1  # -1: the vCPUs per GPU (trainer/loading.py)
    decode_on: str = "auto"  # auto | cpu | device: where JPEGs are decoded
    valid_fraction: float = 0.2
    amp: bool = True
    amp_dtype: str = "float16"  # autocast type on a GPU when amp; bfloat16 needs no loss scaling
    checkpoint_every_epochs: int = 1
    max_bad_images: int = 0  # unreadable images skipped (and logged) instead of failing
    select_metric: str = "valid_map"  # the model is the epoch that scored best by it
    early_stopping_patience: int = 0  # stop after this many epochs without improvement; 0: off

    def __post_init__(self) -> None:
        if self.model in FAMILIES:
            if not self.backbone:
                object.__setattr__(self, "backbone", FAMILIES[self.model].default_backbone)
            _fill_from_recipe(self)
        _validate(self)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_RANGES: dict[str, tuple[float, float]] = {
    "epochs": (1, 1000),
    "batch_size": (1, 512),
    "image_size": (64, 2048),
    "learning_rate": (1e-7, 10.0),
    "weight_decay": (0.0, 1.0),
    "ema_decay": (0.5, 0.999999),
    "grad_clip_norm": (0.0, 1000.0),
    "seed": (0, 2**31 - 1),
    "num_workers": (-1, 64),
    "valid_fraction": (0.01, 0.9),
    "checkpoint_every_epochs": (1, 1000),
    "max_bad_images": (0, 1_000_000),
    "early_stopping_patience": (0, 1000),
}
# The first type named in each annotation ("float | str | None" -> float).
_TYPES: dict[str, str] = {
    f.name: str(f.type).split("|")[0].strip()
    for f in fields(Hyperparameters)  # type: ignore[misc]
}
_TYPE_NAMES = {"str": str, "bool": bool, "int": int, "float": float}
NAMES: tuple[str, ...] = tuple(f.name for f in fields(Hyperparameters))


def value_type(name: str) -> type:
    """The type of a hyperparameter's value (learning_rate: float, though "auto" is allowed)."""
    return _TYPE_NAMES[_TYPES[name]]


def allowed_range(name: str) -> tuple[float, float] | None:
    """The inclusive range a numeric hyperparameter must be in; None when it has none."""
    return _RANGES.get(name)


def job_string(value: Any) -> str:
    """One value as CreateTrainingJob's HyperParameters carry it (the raw encoding)."""
    return _to_string(value)


AUTO = "auto"
_CHOICES = {
    "optimizer": OPTIMIZERS,
    "schedule": SCHEDULES,
    "augmentation": AUGMENTATIONS,
    "amp_dtype": AMP_DTYPES,
    "decode_on": DECODE_ON,
}


def _fill_from_recipe(hp: Hyperparameters) -> None:
    chosen = recipe(hp.model, hp.pretrained)
    defaults = {
        "learning_rate": chosen.learning_rate_for(hp.batch_size),
        "optimizer": chosen.optimizer,
        "schedule": chosen.schedule,
        "weight_decay": chosen.weight_decay,
        "ema": chosen.ema,
        "augmentation": chosen.augmentation,
    }
    for name, value in defaults.items():
        if getattr(hp, name) in (None, ""):
            object.__setattr__(hp, name, value)


def _validate(hp: Hyperparameters) -> None:
    if hp.model not in FAMILIES:
        raise HyperparameterError(
            f"hyperparameter 'model' = {hp.model!r} is not supported; "
            f"allowed: {', '.join(FAMILIES)}"
        )
    family = FAMILIES[hp.model]
    if hp.backbone not in family.backbones:
        raise HyperparameterError(
            f"hyperparameter 'backbone' = {hp.backbone!r} is not available for model "
            f"{hp.model!r}; allowed: {', '.join(family.backbones)}"
        )
    for name, allowed in _CHOICES.items():
        if getattr(hp, name) not in allowed:
            raise HyperparameterError(
                f"hyperparameter {name!r} = {getattr(hp, name)!r} is not supported; "
                f"allowed: {', '.join(allowed)}"
            )
    if hp.select_metric not in SELECTABLE:
        raise HyperparameterError(
            f"hyperparameter 'select_metric' = {hp.select_metric!r} is not a metric to select by; "
            f"allowed: {', '.join(SELECTABLE)}"
        )
    for name, (low, high) in _RANGES.items():
        value = getattr(hp, name)
        if name == "learning_rate" and value == AUTO:
            continue
        if not low <= value <= high:
            raise HyperparameterError(
                f"hyperparameter {name!r} = {value!r} is out of range; allowed: {low} to {high}"
            )
    multiple = family.image_size_multiple
    if hp.image_size % multiple:
        raise HyperparameterError(
            f"hyperparameter 'image_size' = {hp.image_size} must be a multiple of {multiple} "
            f"for model {hp.model!r} (e.g. {hp.image_size // multiple * multiple or multiple})"
        )


def _coerce(name: str, value: Any) -> Any:
    kind = _TYPE_NAMES[_TYPES[name]]
    if isinstance(value, str):
        value = value.strip()
    if name == "learning_rate" and isinstance(value, str) and value.lower() == AUTO:
        return AUTO
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise HyperparameterError(f"hyperparameter {name!r} = {value!r} must be true or false")
    if kind is int:
        if isinstance(value, bool):
            raise HyperparameterError(f"hyperparameter {name!r} = {value!r} must be an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        try:
            return int(str(value))
        except ValueError:
            raise HyperparameterError(
                f"hyperparameter {name!r} = {value!r} must be an integer"
            ) from None
    if kind is float:
        if isinstance(value, bool):
            raise HyperparameterError(f"hyperparameter {name!r} = {value!r} must be a number")
        try:
            result = float(value)
        except (TypeError, ValueError):
            also = f" or {AUTO!r}" if name == "learning_rate" else ""
            raise HyperparameterError(
                f"hyperparameter {name!r} = {value!r} must be a number{also}"
            ) from None
        if result != result or result in (float("inf"), float("-inf")):
            raise HyperparameterError(
                f"hyperparameter {name!r} = {value!r} must be a finite number"
            )
        return result
    if not isinstance(value, str):
        raise HyperparameterError(f"hyperparameter {name!r} = {value!r} must be a string")
    return value


def _decode(raw: str) -> Any:
    """The training toolkit's rule: try JSON (the SDK's encoding), fall back to the raw string."""
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
        return raw


def from_values(values: Mapping[str, Any]) -> Hyperparameters:
    """Typed values (a console request's JSON, or decoded strings) -> validated Hyperparameters."""
    unknown = sorted(k for k in values if k not in NAMES)
    if unknown:
        raise HyperparameterError(
            f"unknown hyperparameter {unknown[0]!r}; allowed: {', '.join(NAMES)}"
        )
    return Hyperparameters(**{k: _coerce(k, v) for k, v in values.items()})


def parse(raw: Mapping[str, str]) -> Hyperparameters:
    """hyperparameters.json as SageMaker writes it (either encoding) -> Hyperparameters."""
    values = {
        key: _decode(value) if isinstance(value, str) else value
        for key, value in raw.items()
        if not key.startswith(SAGEMAKER_RESERVED_PREFIX) and key != TUNING_OBJECTIVE_KEY
    }
    return from_values(values)


def _to_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def to_job_strings(hp: Hyperparameters) -> dict[str, str]:
    """The raw-string map for CreateTrainingJob's HyperParameters (within SageMaker's limits)."""
    strings = {name: _to_string(value) for name, value in hp.as_dict().items()}
    if len(strings) > MAX_ENTRIES:
        raise HyperparameterError(f"{len(strings)} hyperparameters; SageMaker allows {MAX_ENTRIES}")
    for key, value in strings.items():
        if len(key) > MAX_KEY_OR_VALUE_CHARS or len(value) > MAX_KEY_OR_VALUE_CHARS:
            raise HyperparameterError(
                f"hyperparameter {key!r} is longer than SageMaker's "
                f"{MAX_KEY_OR_VALUE_CHARS} characters"
            )
    return strings

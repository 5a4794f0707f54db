"""contract.launcher_settings: what the stack writes is what the function reads back, with
one range table; the stdlib instance-type rule accepts every type SageMaker lists."""

from __future__ import annotations

from dataclasses import replace

import botocore.session
import pytest

from contract.launcher_settings import (
    RANGES,
    LauncherSettings,
    SettingsError,
    check_instance_type,
)
from contract.names import Env
from detrain import emulator


def test_to_environ_and_from_environ_round_trip():
    settings = replace(emulator.launcher_settings(), spot="required", max_runtime_hours=672)

    assert LauncherSettings.from_environ(settings.to_environ()) == settings


@pytest.mark.parametrize("name", list(RANGES))
def test_each_range_end_is_allowed_and_one_past_it_is_named(name):
    low, high = RANGES[name]
    environ = emulator.launcher_settings().to_environ()
    for value in (low, high):
        LauncherSettings.from_environ({**environ, name: str(value)})
    for value in (low - 1, high + 1):
        with pytest.raises(SettingsError, match=f"{name} = '{value}'.*from {low} to {high}"):
            LauncherSettings.from_environ({**environ, name: str(value)})


def test_max_runtime_is_whole_hours_up_to_sagemakers_28_days():
    assert RANGES[Env.MAX_RUNTIME_HOURS] == (1, 28 * 24)


def test_every_training_instance_type_sagemaker_lists_has_the_contracts_shape():
    model = botocore.session.get_session().get_service_model("sagemaker")
    listed = model.shape_for("TrainingInstanceType").enum

    assert [t for t in listed if not _accepted(t)] == []
    assert any("-" in t.split(".")[1] for t in listed)  # e.g. ml.p6-b200.48xlarge


@pytest.mark.parametrize(
    "value", ["g5.xlarge", "ml.g5", "ml.G5.xlarge", "ml.g5.xlarge ", "ml.-g5.xlarge", "ml..x"]
)
def test_a_malformed_instance_type_is_named(value):
    with pytest.raises(SettingsError, match="not a SageMaker instance type"):
        check_instance_type(Env.ALLOWED_INSTANCE_TYPES, value)


def _accepted(instance_type: str) -> bool:
    try:
        check_instance_type(Env.ALLOWED_INSTANCE_TYPES, instance_type)
    except SettingsError:
        return False
    return True

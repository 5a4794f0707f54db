"""--hp KEY=VALUE: one reader for every command, the trainer's rule for each value."""

from __future__ import annotations

import pytest

from detrain.cli_error import CliError
from detrain.hyperparameter_options import hyperparameter_strings, hyperparameter_values

WORDS = ["epochs=3", "model = efficientdet", "amp=false", "learning_rate=1e-3"]


def test_a_local_job_gets_the_raw_strings_after_the_trainers_checks():
    assert hyperparameter_strings(WORDS) == {
        "epochs": "3",
        "model": "efficientdet",
        "amp": "false",
        "learning_rate": "1e-3",
    }


def test_a_console_request_gets_the_values_as_the_trainer_reads_them():
    assert hyperparameter_values(WORDS) == {
        "epochs": 3,
        "model": "efficientdet",
        "amp": False,
        "learning_rate": 0.001,
    }


def test_a_json_encoded_value_reads_as_the_sagemaker_sdk_writes_it():
    assert hyperparameter_values(['model="efficientdet"', "epochs=2.0"]) == {
        "model": "efficientdet",
        "epochs": 2,
    }


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (["epochs"], "'epochs' is not KEY=VALUE; allowed keys: model, backbone"),
        (["=3"], "'=3' is not KEY=VALUE"),
        (["colour=red"], "unknown hyperparameter 'colour'; allowed: model"),
        (["epochs=many"], "'epochs' = 'many' must be an integer"),
        (["epochs=0"], "'epochs' = 0 is out of range; allowed: 1 to 1000"),
    ],
)
@pytest.mark.parametrize("reader", [hyperparameter_strings, hyperparameter_values])
def test_bad_hyperparameters_name_the_value_and_what_is_allowed(reader, pairs, message):
    with pytest.raises(CliError, match=message):
        reader(pairs)

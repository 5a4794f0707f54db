"""contract.tuning: a tuning block is checked by the hyperparameter and metric tables."""

from __future__ import annotations

import pytest

from contract.hyperparameters import parse as parse_hyperparameters
from contract.tuning import TuningError, parse, range_from_text, tuning_job_config

LR_LOG = {"min": 1e-4, "max": 1e-2, "scaling": "Logarithmic"}


def tune(static=None, jobs_cap=8, parallel_cap=2, **block):
    block.setdefault("ranges", {"learning_rate": LR_LOG})
    return parse(block, static or {}, max_jobs_cap=jobs_cap, max_parallel_cap=parallel_cap)


@pytest.mark.parametrize(
    ("objective", "direction"),
    [("valid_map", "Maximize"), ("valid_map_50", "Maximize"), ("valid_loss", "Minimize")],
)
def test_the_objective_takes_its_direction_from_the_contract(objective, direction):
    config = tuning_job_config(tune(objective=objective), epochs=20)

    assert config["HyperParameterTuningJobObjective"] == {
        "Type": direction,
        "MetricName": objective,
    }


def test_an_objective_that_is_no_metric_is_refused_with_the_allowed_ones():
    with pytest.raises(TuningError, match=r"'mAP' is not a metric.*valid_map, valid_map_50"):
        tune(objective="mAP")


@pytest.mark.parametrize(
    ("ranges", "message"),
    [
        (
            {"learning_rate": {"min": 1e-9, "max": 1e-2}},
            "learning_rate 1e-09 to 0.01 is outside learning_rate's allowed range 1e-07 to 10",
        ),
        ({"epochs": {"min": 5, "max": 2000}}, "epochs 5 to 2000 is outside .* 1 to 1000"),
        ({"weight_decay": {"min": 0, "max": 0.1, "scaling": "log"}}, "Logarithmic .* min > 0"),
        ({"epochs": {"min": 1, "max": 9, "scaling": "ReverseLogarithmic"}}, "continuous range"),
        ({"ema_decay": {"min": 0.9, "max": 1.5, "scaling": "ReverseLogarithmic"}}, "outside"),
        ({"image_size": {"min": 320, "max": 640}}, "tune it with 'values'"),
        ({"image_size": {"values": [384, 400]}}, "'image_size' = 400 must be a multiple of 32"),
        ({"optimizer": {"min": 1, "max": 2}}, "'optimizer' is not a number"),
        ({"optimizer": {"values": ["sgd", "lion"]}}, "'lion' is not supported; allowed: sgd"),
        ({"epochs": {"min": 2.5, "max": 9}}, "min 2.5 must be a whole number"),
        ({"epochs": {"min": 9, "max": 9}}, "min 9 must be below max 9"),
        ({"dropout": {"values": [0.1]}}, "'dropout' is not a hyperparameter; allowed: backbone"),
        ({"seed": {"values": [1, 2]}}, "'seed' cannot be tuned"),
        ({"model": {"values": ["retinanet"]}}, "one model family per tuning job"),
        ({"epochs": {"values": list(range(1, 32))}}, "31 values; SageMaker allows at most 30"),
        ({"learning_rate": {"min": 1e-4, "max": 1e-2, "scaling": "cubic"}}, "'cubic' is not"),
    ],
)
def test_a_range_the_trainer_would_refuse_is_refused_naming_it(ranges, message):
    with pytest.raises(TuningError, match=message):
        tune(ranges=ranges)


def test_image_size_values_follow_the_model_familys_multiple():
    ok = tune(static={"model": "efficientdet"}, ranges={"image_size": {"values": [384, 512]}})
    assert ok.ranges[0].values == ("384", "512")
    with pytest.raises(TuningError, match=r"multiple of 128 for model 'efficientdet'"):
        tune(static={"model": "efficientdet"}, ranges={"image_size": {"values": [320, 512]}})


def test_a_hyperparameter_fixed_and_tuned_at_once_is_refused():
    with pytest.raises(TuningError, match=r"'learning_rate' is both fixed"):
        tune(static={"learning_rate": 0.01})


def test_limits_are_capped_by_the_deployment():
    with pytest.raises(TuningError, match=r"'max_jobs' = 9 .* allowed: 1 to 8 .*maxTuningJobs"):
        tune(max_jobs=9)
    with pytest.raises(TuningError, match=r"'max_parallel_jobs' = 3 .* allowed: 1 to 2"):
        tune(max_jobs=6, max_parallel_jobs=3)
    with pytest.raises(TuningError, match=r"allowed: 1 to 2 .*'max_jobs' = 2"):
        tune(max_jobs=2, max_parallel_jobs=3, parallel_cap=5)
    limits = tuning_job_config(tune(max_jobs=6, max_parallel_jobs=2), 20)["ResourceLimits"]
    assert limits == {"MaxNumberOfTrainingJobs": 6, "MaxParallelTrainingJobs": 2}


def test_grid_takes_only_values_and_runs_every_combination():
    ranges = {"image_size": {"values": [384, 512]}, "optimizer": {"values": ["sgd", "adamw"]}}
    grid = tune(strategy="grid", ranges=ranges)
    assert (grid.strategy, grid.max_jobs) == ("Grid", 4)
    assert "MaxNumberOfTrainingJobs" not in tuning_job_config(grid, 20)["ResourceLimits"]
    with pytest.raises(TuningError, match=r"Grid search takes only 'values'.*learning_rate"):
        tune(strategy="Grid")
    with pytest.raises(TuningError, match=r"Grid search of 9 training jobs is not allowed"):
        three_by_three = {"epochs": {"values": [1, 2, 3]}, "batch_size": {"values": [2, 4, 8]}}
        tune(strategy="Grid", ranges=three_by_three)


def test_hyperband_budgets_by_epochs_and_has_no_other_early_stopping():
    config = tuning_job_config(tune(static={"epochs": 30}, strategy="Hyperband"), 30)
    assert config["StrategyConfig"] == {
        "HyperbandStrategyConfig": {"MinResource": 1, "MaxResource": 30}
    }
    assert config["TrainingJobEarlyStoppingType"] == "Off"
    with pytest.raises(TuningError, match=r"'Auto' cannot be used with Hyperband"):
        tune(strategy="Hyperband", early_stopping="auto")
    with pytest.raises(TuningError, match=r"fix 'epochs'"):
        tune(strategy="Hyperband", ranges={"epochs": {"min": 5, "max": 30}})


def test_the_command_line_range_forms():
    assert range_from_text("learning_rate", "1e-4:1e-2:log") == {
        "min": 0.0001,
        "max": 0.01,
        "scaling": "Logarithmic",
    }
    assert range_from_text("image_size", "384,512") == {"values": [384, 512]}
    assert range_from_text("optimizer", "sgd, adamw") == {"values": ["sgd", "adamw"]}
    with pytest.raises(TuningError, match=r"not LOW:HIGH"):
        range_from_text("epochs", "1:2:log:x")


def test_a_trials_hyperparameters_json_is_read_past_sagemakers_objective_key():
    """SageMaker adds _tuning_objective_metric to every trial's hyperparameters.json."""
    hp = parse_hyperparameters({"learning_rate": "0.0031", "_tuning_objective_metric": "valid_map"})

    assert hp.learning_rate == pytest.approx(0.0031)

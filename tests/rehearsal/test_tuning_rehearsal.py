"""The tuning rehearsal: request, launcher, tuning job, trials, objective, best trial, summary.

The trials run the stand-in trainer (fake_train.py), whose last valid_map peaks at a learning
rate of 1e-3; what is under test is the path, not learning.
"""

import io
import json
import math
from types import SimpleNamespace

import boto3
import pytest
from botocore.stub import Stubber

from contract.metrics import metric_definitions
from contract.tuning import parse
from detrain import cli, tuning_rehearsal, tuning_trials

TUNING = {
    "objective": "valid_map",
    "strategy": "Random",
    "ranges": {"learning_rate": {"min": 1e-4, "max": 1e-1, "scaling": "Logarithmic"}},
    "max_jobs": 3,
}


def _tuning(ranges, strategy="Random", max_jobs=None):
    body = {"strategy": strategy, "ranges": ranges}
    if max_jobs:
        body["max_jobs"] = max_jobs
    return parse(body, {}, max_jobs_cap=500, max_parallel_cap=10)


def test_random_draws_stay_in_range_log_uniformly_for_a_logarithmic_range():
    tuning = _tuning(
        {
            "learning_rate": {"min": 1e-5, "max": 1e-1, "scaling": "log"},
            "batch_size": {"min": 2, "max": 16},
            "augmentation": {"values": ["light", "standard"]},
        },
        max_jobs=400,
    )

    trials, how = tuning_trials.draw(tuning, seed=1)

    assert len(trials) == 400 and how == "drawn at random within the ranges"
    rates = [float(t["learning_rate"]) for t in trials]
    assert all(1e-5 <= r <= 1e-1 for r in rates)
    below_geometric_middle = sum(r < 1e-3 for r in rates) / len(rates)
    assert 0.4 < below_geometric_middle < 0.6  # linear draws would put ~1% there
    assert {int(t["batch_size"]) for t in trials} == set(range(2, 17))
    assert {t["augmentation"] for t in trials} == {"light", "standard"}


def test_grid_runs_every_combination_and_bayesian_says_it_draws_at_random():
    values = {"image_size": {"values": [128, 256]}, "augmentation": {"values": ["light", "none"]}}
    grid = _tuning(values, "Grid")
    bayesian = _tuning({"learning_rate": {"min": 1e-4, "max": 1e-2}}, "Bayesian", max_jobs=2)

    trials, how = tuning_trials.draw(grid)
    _, bayesian_how = tuning_trials.draw(bayesian)

    assert how == "every combination"
    assert sorted((t["image_size"], t["augmentation"]) for t in trials) == [
        ("128", "light"), ("128", "none"), ("256", "light"), ("256", "none"),
    ]  # fmt: skip
    assert (
        "SageMaker's Bayesian strategy" in bayesian_how and "draws them as Random" in bayesian_how
    )


def test_the_objective_is_the_last_value_the_metric_definition_captures():
    lines = [
        "[metrics] epoch=1 train_loss=1.5 valid_loss=1.2 valid_map=0.31 valid_map_50=0.5 lr=0.01",
        "an unrelated line valid_map=0.99",
        "[metrics] epoch=2 train_loss=1.1 valid_loss=1.0 valid_map=0.27 valid_map_50=0.6 lr=0.01",
    ]

    assert tuning_trials.final_metric(lines, metric_definitions(), "valid_map") == 0.27
    assert tuning_trials.final_metric(lines[1:2], metric_definitions(), "valid_map") is None
    with pytest.raises(ValueError, match="'recall' has no MetricDefinitions entry"):
        tuning_trials.final_metric(lines, metric_definitions(), "recall")


def test_a_small_tuning_job_runs_end_to_end_through_the_emulator(tmp_path, fake_train):
    out = io.StringIO()

    outcome = tuning_rehearsal.rehearse_tuning(
        tmp_path, tuning=TUNING, images=4, out=out, command=fake_train, seed=3
    )

    assert [r.status for r in outcome.results] == ["Completed"] * 3
    assert outcome.name.startswith("detrain-sample-shapes-")
    names = [t["TrainingJobName"] for t in outcome.trials]
    assert all(n.startswith(outcome.name + "-") for n in names)
    assert [n.split("-")[-2] for n in names] == ["001", "002", "003"]
    values = {}
    for trial, result in zip(outcome.trials, outcome.results, strict=True):
        config = result.run_folder / "algo-1" / "input" / "config" / "hyperparameters.json"
        given = json.loads(config.read_text())
        rate = trial["TunedHyperParameters"]["learning_rate"]
        assert given["learning_rate"] == rate and given["_tuning_objective_metric"] == "valid_map"
        assert given["model"] == "efficientdet" and given["epochs"] == "30"  # the static ones
        assert 1e-4 <= float(rate) <= 1e-1
        expected = round(1 - abs(math.log10(float(rate)) + 3) / 3, 6)  # the fake's last line
        values[trial["TrainingJobName"]] = trial["FinalHyperParameterTuningJobObjectiveMetric"][
            "Value"
        ]
        assert values[trial["TrainingJobName"]] == expected
    assert outcome.best["TrainingJobName"] == max(values, key=values.get)
    assert len(set(values.values())) == 3
    page = outcome.summary.read_text()
    assert all(name in page for name in names)
    assert page.count('<tr class="best">') == 1 and "&#9733; best" in page
    report = outcome.results[0].output_data_dir / "report.html"
    assert f"A trial of tuning job <b>{outcome.name}</b>" in report.read_text()
    assert 'href="../../../../../tuning-summary.html"' in report.read_text()
    assert (tmp_path / "jobs" / names[0] / "algo-1" / "output" / "data" / "report.html").samefile(
        report
    )
    log = out.getvalue()
    assert "==> [4/6] running tuning job" in log and "3 trials, drawn at random" in log
    assert f"==> [5/6] best trial: {outcome.best['TrainingJobName']}" in log
    created = boto3.client(
        "sagemaker", region_name="us-east-1"
    )  # the emulator is gone: the shapes are checked offline
    with Stubber(created) as stubber:  # the trials have SageMaker's own summary shape
        stubber.add_response(
            "list_training_jobs_for_hyper_parameter_tuning_job",
            {"TrainingJobSummaries": outcome.trials},
        )
        created.list_training_jobs_for_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=outcome.name
        )


class _Recorded:
    """rehearse_tuning's stand-in for the command-line tests: records the tuning block."""

    def __init__(self):
        self.blocks: list[dict] = []

    def __call__(self, workdir, *, tuning, **_options):
        self.blocks.append(tuning)
        return SimpleNamespace(trials=[], best=None, summary=workdir / "s.html", succeeded=True)


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["--tune"], tuning_rehearsal.REHEARSAL_TUNING),
        (
            ["--range", "image_size=128,256", "--strategy", "Grid", "--objective", "valid_loss"],
            {
                "objective": "valid_loss",
                "strategy": "Grid",  # every combination: no max_jobs
                "ranges": {"image_size": {"values": [128, 256]}},
            },
        ),
        (
            ["--tune", "--range", "learning_rate=0.001:0.1:log", "--max-jobs", "2"],
            {
                **tuning_rehearsal.REHEARSAL_TUNING,
                "ranges": {"learning_rate": {"min": 0.001, "max": 0.1, "scaling": "Logarithmic"}},
                "max_jobs": 2,
            },
        ),
    ],
)
def test_rehearse_tune_builds_the_tuning_block_from_its_options(
    words, expected, monkeypatch, tmp_path
):
    recorded = _Recorded()
    monkeypatch.setattr(tuning_rehearsal, "rehearse_tuning", recorded)

    status = cli.main(["rehearse", "--workdir", str(tmp_path), *words])

    assert status == 0
    assert recorded.blocks == [expected]


def test_rehearse_tune_refuses_several_hosts(monkeypatch, tmp_path, capsys):
    recorded = _Recorded()
    monkeypatch.setattr(tuning_rehearsal, "rehearse_tuning", recorded)

    status = cli.main(["rehearse", "--workdir", str(tmp_path), "--tune", "--instance-count", "2"])

    assert status == 2 and recorded.blocks == []
    assert "--instance-count is for a single job" in capsys.readouterr().err

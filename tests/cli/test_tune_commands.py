"""`detrain tune` writes the launcher's request; `describe` and `list` read tuning jobs.

The tuning job is created in the moto server (which stores it as given); moto has no
ListTrainingJobsForHyperParameterTuningJob, so the trials are a Stubber answer in SageMaker's
own shape, validated by botocore's service model.
"""

from __future__ import annotations

import argparse

import boto3
import pytest
from botocore.stub import Stubber

from contract.tuning import TuningError
from detrain import cli, doctor, tuning_results
from tests.support.service_quotas import sagemaker_quotas


def parsed(*words: str) -> argparse.Namespace:
    return cli.build_parser().parse_args(["tune", "fridge", *words])


def test_tune_writes_the_console_request(capsys):
    code = cli.main(
        [
            "tune", "fridge", "--range", "learning_rate=1e-4:1e-2:log",
            "--range", "image_size=384,512", "--max-jobs", "6", "--parallel", "2",
            "--early-stopping", "auto", "--no-spot", "--keep-alive", "5", "--print-request",
        ]
    )  # fmt: skip

    assert code == 0
    assert '"keep_alive_minutes": 5' in capsys.readouterr().out


def test_a_bad_range_is_one_line_naming_both_ranges(capsys):
    code = cli.main(["tune", "fridge", "--range", "learning_rate=1e-9:1e-2", "--print-request"])

    assert code == 2
    assert "outside learning_rate's allowed range 1e-07 to 10" in capsys.readouterr().err


def test_a_range_without_a_name_is_refused():
    from detrain.tune_commands import tune_request

    with pytest.raises(TuningError, match=r"is not NAME=LOW:HIGH"):
        tune_request(parsed("--range", "1e-4:1e-2"))


TRIAL = {
    "TrainingJobName": "detrain-fridge-82c6735b8-002-5d8c2e1a",
    "TrainingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/"
    "detrain-fridge-82c6735b8-002-5d8c2e1a",
    "CreationTime": "2026-12-06T00:00:00Z",
    "TrainingJobStatus": "Completed",
    "TunedHyperParameters": {"learning_rate": "0.0042", "image_size": "512"},
    "FinalHyperParameterTuningJobObjectiveMetric": {"MetricName": "valid_map", "Value": 0.61},
    "ObjectiveStatus": "Succeeded",
}


def test_describe_shows_the_state_the_best_trial_and_every_trial(aws):
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName="detrain-fridge-82c6735b8",
        HyperParameterTuningJobConfig={
            "Strategy": "Bayesian",
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "valid_map"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 6, "MaxParallelTrainingJobs": 2},
        },
    )
    real_describe = sagemaker.describe_hyper_parameter_tuning_job(
        HyperParameterTuningJobName="detrain-fridge-82c6735b8"
    )
    with Stubber(sagemaker) as stubber:
        answer = {k: v for k, v in real_describe.items() if k != "ResponseMetadata"}
        answer["BestTrainingJob"] = TRIAL
        stubber.add_response("describe_hyper_parameter_tuning_job", answer)
        stubber.add_response(
            "list_training_jobs_for_hyper_parameter_tuning_job",
            {"TrainingJobSummaries": [TRIAL]},
            {
                "HyperParameterTuningJobName": "detrain-fridge-82c6735b8",
                "SortBy": "FinalObjectiveMetricValue",
                "SortOrder": "Descending",
                "MaxResults": 100,
            },
        )
        text = "\n".join(tuning_results.describe(sagemaker, "detrain-fridge-82c6735b8"))

    assert "objective:  Maximize valid_map (Bayesian" in text
    assert f"best trial: {TRIAL['TrainingJobName']}  Completed   valid_map=0.61" in text
    assert "image_size=512, learning_rate=0.0042" in text


def test_list_shows_tuning_jobs(aws):
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName="detrain-fridge-82c6735b8",
        HyperParameterTuningJobConfig={
            "Strategy": "Bayesian",
            "ResourceLimits": {"MaxParallelTrainingJobs": 2},
        },
    )
    lines = tuning_results.list_lines(sagemaker, max_results=20, all_jobs=False, status=None)

    assert lines[0].startswith("TUNING JOB")
    assert lines[1].startswith("detrain-fridge-82c6735b8")


def test_doctor_reads_the_warm_pool_quota_of_each_type():
    quotas = {q["QuotaName"]: q for q in sagemaker_quotas({
        "ml.g5.xlarge for training warm pool usage": 0.0,
        "ml.g6.xlarge for training warm pool usage": 2.0,
    })}  # fmt: skip

    zero = doctor.warm_pool_quota(quotas, "ml.g5.xlarge")
    two = doctor.warm_pool_quota(quotas, "ml.g6.xlarge")

    assert "--keep-alive keeps no warm pool until it is raised" in zero.text()
    assert "request-service-quota-increase" in zero.text()
    assert "'ml.g6.xlarge for training warm pool usage'" in two.text() and "is 2" in two.text()

"""A tuning job's results: its best trial for fetch and deploy, its summary page, the link back.

The tuning job and its trials are SageMaker's answers kept as a fixture (tuning_job.json);
moto answers neither DescribeHyperParameterTuningJob's best trial nor the trials' list, so they
are Stubber answers, validated by botocore's service model.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from detrain import endpoint_commands, tuning_results, tuning_summary
from detrain.cli_error import CliError

FIXTURE = json.loads(Path(__file__).with_name("tuning_job.json").read_text())
JOB, TRIALS = FIXTURE["tuning_job"], FIXTURE["trials"]
NAME = JOB["HyperParameterTuningJobName"]
BEST = JOB["BestTrainingJob"]["TrainingJobName"]


def _trial_description(name: str) -> dict:
    return {
        "TrainingJobName": name,
        "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}",
        "TuningJobArn": JOB["HyperParameterTuningJobArn"],
        "ModelArtifacts": {"S3ModelArtifacts": f"s3://bucket/models/{name}/output/model.tar.gz"},
        "TrainingJobStatus": "Completed",
        "SecondaryStatus": "Completed",
        "AlgorithmSpecification": {"TrainingInputMode": "File"},
        "ResourceConfig": {"VolumeSizeInGB": 50},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "CreationTime": "2026-12-06T10:07:00Z",
    }


@pytest.fixture
def sagemaker():
    client = boto3.client("sagemaker", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def _a_tuning_job_name(stubber: Stubber, job: dict) -> None:
    stubber.add_client_error(
        "describe_training_job", "ValidationException", "Requested resource not found."
    )
    stubber.add_response(
        "describe_hyper_parameter_tuning_job", job, {"HyperParameterTuningJobName": NAME}
    )


def test_fetch_and_deploy_take_a_tuning_jobs_best_trial_and_say_which(sagemaker, capsys):
    client, stubber = sagemaker
    _a_tuning_job_name(stubber, JOB)
    stubber.add_response(
        "describe_training_job", _trial_description(BEST), {"TrainingJobName": BEST}
    )

    job, uri = endpoint_commands.completed_model(client, NAME)

    assert job == BEST and uri.endswith(f"{BEST}/output/model.tar.gz")
    assert capsys.readouterr().out == (
        f"tuning job {NAME}: best trial {BEST} (valid_map 0.613, the highest)\n"
    )


def test_a_tuning_job_without_a_best_trial_says_so(sagemaker):
    client, stubber = sagemaker
    running = {k: v for k, v in JOB.items() if k != "BestTrainingJob"}
    _a_tuning_job_name(stubber, {**running, "HyperParameterTuningJobStatus": "InProgress"})

    with pytest.raises(CliError, match=rf"tuning job '{NAME}' is InProgress and has no best trial"):
        tuning_results.described_job(client, NAME)


def test_a_name_that_is_neither_job_is_named_in_the_error(sagemaker):
    client, stubber = sagemaker
    stubber.add_client_error(
        "describe_training_job", "ValidationException", "Requested resource not found."
    )
    stubber.add_client_error(
        "describe_hyper_parameter_tuning_job", "ResourceNotFound", "Amazon SageMaker can't find"
    )

    with pytest.raises(CliError, match="no training job or tuning job is named 'detrain-nope'"):
        tuning_results.described_job(client, "detrain-nope")


def test_the_summary_shows_every_trial_marks_the_best_and_embeds_its_plots():
    page = tuning_summary.summary_html(JOB, TRIALS, report_links={BEST: f"{BEST}/report.html"})

    assert all(trial["TrainingJobName"] in page for trial in TRIALS)
    assert page.count('<tr class="best">') == 1
    best_row = re.search(r'<tr class="best">(.*?)</tr>', page).group(1)
    assert f"{BEST} &#9733; best" in best_row and "0.613" in best_row and "0.0042" in best_row
    assert page.count('<img src="data:image/png;base64,') == 2  # learning_rate, image_size
    assert "CUDA out of memory" in page  # the failed trial says why
    assert f'<a href="{BEST}/report.html">' in page
    assert "<script" not in page and not re.search(r"(src|href)=\"(https?:)?//", page)
    assert "http://" not in page and "https://" not in page


def test_a_trials_report_gets_one_line_back_to_its_tuning_job():
    report = "<!DOCTYPE html><html><head></head><body><h1>trial</h1></body></html>"

    linked = tuning_summary.link_back(report, NAME, "../tuning-summary.html", "valid_map 0.613")
    again = tuning_summary.link_back(linked, NAME, "../tuning-summary.html", "valid_map 0.613")

    assert linked.startswith("<!DOCTYPE html><html><head></head><body><p class=")
    assert f"A trial of tuning job <b>{NAME}</b> (valid_map 0.613)" in linked
    assert 'href="../tuning-summary.html"' in linked
    assert again == linked


class _Session:
    """What tuning_reports needs of a boto3 session: the stubbed SageMaker client."""

    def __init__(self, client):
        self._client = client

    def client(self, name: str):
        assert name == "sagemaker"
        return self._client


def _fetched_report(folder_of_reports: list[Path]):
    """fetch_report as model_commands passes it: the trial's report.html under OUTPUT/TRIAL/."""

    def fetch(_aws, described: dict, output: Path) -> Path:
        report = output / described["TrainingJobName"] / "report.html"
        report.parent.mkdir(parents=True)
        report.write_text("<html><head></head><body><h1>the trial's report</h1></body></html>")
        folder_of_reports.append(report)
        return report

    return fetch


def _trials_listed(stubber: Stubber) -> None:
    stubber.add_response(
        "list_training_jobs_for_hyper_parameter_tuning_job",
        {"TrainingJobSummaries": TRIALS},
        {
            "HyperParameterTuningJobName": NAME,
            "SortBy": "FinalObjectiveMetricValue",
            "SortOrder": "Descending",
            "MaxResults": 100,
        },
    )


def test_report_of_a_tuning_job_writes_the_summary_beside_the_best_trials_linked_report(
    sagemaker, tmp_path, capsys
):
    from detrain import tuning_reports

    client, stubber = sagemaker
    stubber.add_response(
        "describe_hyper_parameter_tuning_job", JOB, {"HyperParameterTuningJobName": NAME}
    )
    _trials_listed(stubber)
    stubber.add_response(
        "describe_training_job", _trial_description(BEST), {"TrainingJobName": BEST}
    )
    reports: list[Path] = []

    summary = tuning_reports.tuning_report(
        _Session(client), NAME, tmp_path, _fetched_report(reports)
    )

    assert summary == tmp_path / NAME / tuning_summary.SUMMARY_FILE
    page = summary.read_text()
    assert f'<a href="{BEST}/report.html">' in page  # the summary links the best trial's report
    (report,) = reports
    assert report.parent == tmp_path / NAME / BEST
    linked = report.read_text()
    assert f"A trial of tuning job <b>{NAME}</b> (valid_map 0.613" in linked
    assert 'href="../tuning-summary.html"' in linked
    assert f"best trial {BEST}" in capsys.readouterr().out


def test_report_of_a_trial_writes_its_tuning_jobs_summary_and_links_back(sagemaker, tmp_path):
    from detrain import tuning_reports

    client, stubber = sagemaker
    stubber.add_response(
        "describe_hyper_parameter_tuning_job", JOB, {"HyperParameterTuningJobName": NAME}
    )
    _trials_listed(stubber)
    report = tmp_path / BEST / "report.html"
    report.parent.mkdir()
    report.write_text("<html><body><h1>the trial's report</h1></body></html>")

    summary = tuning_reports.link_trial(
        _Session(client), _trial_description(BEST), report, tmp_path
    )

    assert summary == tmp_path / NAME / tuning_summary.SUMMARY_FILE
    assert f'<a href="../{BEST}/report.html">' in summary.read_text()
    assert f'href="../{NAME}/tuning-summary.html"' in report.read_text()

"""``detrain report`` for tuning jobs: the summary page, and a trial's report linked back to it.

SageMaker knows which tuning job ran a trial (DescribeTrainingJob's TuningJobArn) and which
trial is best (DescribeHyperParameterTuningJob's BestTrainingJob). The container knows neither
(a trial sees only ``_tuning_objective_metric`` among its hyperparameters, and its own job
name), so the link back is added here, to the downloaded copy of the trial's report.html; the
archive in S3 stays as the trainer wrote it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from contract.tuning import TUNING_JOB_NAME_MAX
from detrain import tuning_results, tuning_summary
from detrain.cli_error import CliError


def may_be_tuning_job(error: ClientError, name: str) -> bool:
    """DescribeTrainingJob found no such job, and the name fits a tuning job's."""
    return tuning_results.not_found(error) and len(name) <= TUNING_JOB_NAME_MAX


def tuning_report(aws, name: str, output: Path, fetch_report: Callable) -> Path:
    """OUTPUT/NAME/tuning-summary.html, beside the best trial's report (OUTPUT/NAME/TRIAL/)."""
    sagemaker = aws.client("sagemaker")
    job, trials = _tuning_job(sagemaker, name)
    links: dict[str, str] = {}
    best = job.get("BestTrainingJob")
    folder = output / name
    if best:
        trial = best["TrainingJobName"]
        print(f"tuning job {name}: best trial {trial}")
        try:
            described = sagemaker.describe_training_job(TrainingJobName=trial)
            report = fetch_report(aws, described, folder)
        except CliError as error:
            print(f"warning: the best trial's report is not shown: {error}", file=sys.stderr)
        else:
            _link_back(report, name, folder / tuning_summary.SUMMARY_FILE, best)
            links[trial] = report.relative_to(folder).as_posix()
    return _write_summary(job, trials, folder, links)


def link_trial(aws, described: dict[str, Any], report: Path, output: Path) -> Path:
    """A trial's report, fetched into OUTPUT/TRIAL/: its tuning job's summary written into
    OUTPUT/TUNING_JOB/, and a line at the top of the report linking it."""
    sagemaker = aws.client("sagemaker")
    name = described["TuningJobArn"].rsplit("/", 1)[-1]
    job, trials = _tuning_job(sagemaker, name)
    folder = output / name
    links = {described["TrainingJobName"]: _relative(report, folder)}
    summary = _write_summary(job, trials, folder, links)
    trial = next((t for t in trials if t["TrainingJobName"] == described["TrainingJobName"]), {})
    _link_back(report, name, summary, trial)
    print(f"a trial of tuning job {name}: its summary is {summary}")
    return summary


def _tuning_job(sagemaker, name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    try:
        job = sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    except ClientError as error:
        if tuning_results.not_found(error):
            raise CliError(f"no training job or tuning job is named {name!r}") from None
        raise
    goal = job["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]["Type"]
    return job, list(tuning_results.trials_of(sagemaker, name, goal))


def _write_summary(job: dict, trials: list, folder: Path, links: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    summary = folder / tuning_summary.SUMMARY_FILE
    summary.write_text(
        tuning_summary.summary_html(job, trials, report_links=links), encoding="utf-8"
    )
    return summary


def _link_back(report: Path, name: str, summary: Path, trial: dict[str, Any]) -> None:
    metric = trial.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
    tuned = ", ".join(f"{k}={v}" for k, v in sorted(trial.get("TunedHyperParameters", {}).items()))
    detail = (f"{metric['MetricName']} {metric['Value']:.4g}; " if metric else "") + tuned
    page = report.read_text(encoding="utf-8")
    linked = tuning_summary.link_back(page, name, _relative(summary, report.parent), detail)
    report.write_text(linked, encoding="utf-8")


def _relative(target: Path, start: Path) -> str:
    return Path(os.path.relpath(target.resolve(), start.resolve())).as_posix()

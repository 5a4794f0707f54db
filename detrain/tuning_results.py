"""What `detrain describe` and `detrain list` show of tuning jobs: state, trials, best trial.

DescribeHyperParameterTuningJob gives the state, the counters and the best trial;
ListTrainingJobsForHyperParameterTuningJob gives every trial with its objective value and its
tuned hyperparameters (sorted best first by SageMaker itself).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from contract.names import JOB_NAME_PREFIX
from contract.tuning import TUNING_JOB_NAME_MAX
from detrain.cli_error import CliError


def not_found(error: ClientError) -> bool:
    """A Describe* answer for a name that does not exist (AWS's and moto's wording)."""
    details = error.response.get("Error", {})
    message = str(details.get("Message", "")).lower()
    return details.get("Code") == "ResourceNotFound" or (
        details.get("Code") == "ValidationException"
        and ("not found" in message or "could not find" in message)
    )


def described_job(sagemaker, name: str) -> dict[str, Any]:
    """DescribeTrainingJob of ``name``; for a tuning job's name, of its best trial (SageMaker's
    BestTrainingJob), after a line saying which trial that is and its objective value."""
    try:
        return sagemaker.describe_training_job(TrainingJobName=name)
    except ClientError as error:
        if not not_found(error) or len(name) > TUNING_JOB_NAME_MAX:
            raise
    best = best_trial(sagemaker, name)
    print(f"tuning job {name}: best trial {best['TrainingJobName']} ({_objective_text(best)})")
    return sagemaker.describe_training_job(TrainingJobName=best["TrainingJobName"])


def best_trial(sagemaker, name: str) -> dict[str, Any]:
    """The tuning job's BestTrainingJob; CliError when there is no such job or no best trial."""
    try:
        job = sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    except ClientError as error:
        if not_found(error):
            raise CliError(f"no training job or tuning job is named {name!r}") from None
        raise
    best = job.get("BestTrainingJob")
    if not best:
        raise CliError(
            f"tuning job {name!r} is {job['HyperParameterTuningJobStatus']} and has no best trial: "
            f"no trial has completed with an objective value yet (`detrain describe {name}`)"
        )
    return best


def _objective_text(trial: dict[str, Any]) -> str:
    metric = trial.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
    if not metric:
        return "no objective value"
    goal = {"Maximize": "the highest", "Minimize": "the lowest"}.get(metric.get("Type", ""), "")
    return f"{metric['MetricName']} {metric['Value']:.4g}" + (f", {goal}" if goal else "")


def describe(sagemaker, name: str, *, as_json: bool = False) -> list[str]:
    """The tuning job's lines: state, objective, limits, best trial, then every trial."""
    job = sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    goal = job["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]["Type"]
    trials = list(trials_of(sagemaker, name, goal))
    if as_json:
        job.pop("ResponseMetadata", None)
        return [json.dumps({**job, "Trials": trials}, indent=2, default=str)]
    config = job.get("HyperParameterTuningJobConfig", {})
    objective = config.get("HyperParameterTuningJobObjective", {})
    limits = config.get("ResourceLimits", {})
    counters = job.get("TrainingJobStatusCounters", {})
    lines = [
        f"tuning job: {job['HyperParameterTuningJobName']}",
        f"status:     {job['HyperParameterTuningJobStatus']}",
        f"objective:  {objective.get('Type', '?')} {objective.get('MetricName', '?')} "
        f"({config.get('Strategy', '?')}, early stopping "
        f"{config.get('TrainingJobEarlyStoppingType', 'Off')})",
        f"trials:     {_counts(counters)} of at most {limits.get('MaxNumberOfTrainingJobs', '?')}"
        f", {limits.get('MaxParallelTrainingJobs', '?')} at once",
        f"created:    {when(job.get('CreationTime'))}",
    ]
    if job.get("FailureReason"):
        lines.append(f"failure:    {job['FailureReason']}")
    best = job.get("BestTrainingJob")
    if best:
        lines.append(f"best trial: {_trial_line(best)}")
        lines.append(f"            `detrain describe {best['TrainingJobName']}` for its model")
    if trials:
        lines.append("trials (best first):")
        lines.extend(f"  {_trial_line(trial)}" for trial in trials)
    return lines


def trials_of(sagemaker, name: str, goal: str):
    """Every trial, best first (a loss: lowest first)."""
    params: dict[str, Any] = {
        "HyperParameterTuningJobName": name,
        "SortBy": "FinalObjectiveMetricValue",
        "SortOrder": "Ascending" if goal == "Minimize" else "Descending",
        "MaxResults": 100,
    }
    while True:
        page = sagemaker.list_training_jobs_for_hyper_parameter_tuning_job(**params)
        yield from page["TrainingJobSummaries"]
        if not page.get("NextToken"):
            return
        params["NextToken"] = page["NextToken"]


def _trial_line(trial: dict[str, Any]) -> str:
    metric = trial.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
    value = f"{metric['MetricName']}={metric['Value']:.4g}" if metric else "no objective yet"
    tuned = ", ".join(f"{k}={v}" for k, v in sorted(trial.get("TunedHyperParameters", {}).items()))
    return f"{trial['TrainingJobName']}  {trial['TrainingJobStatus']:<10}  {value}  {tuned}"


def _counts(counters: dict[str, int]) -> str:
    found = [f"{counters[k]} {k.lower()}" for k in sorted(counters) if counters.get(k)]
    return ", ".join(found) or "none started"


def list_lines(sagemaker, *, max_results: int, all_jobs: bool, status: str | None) -> list[str]:
    """Recent tuning jobs, one line each (none: no lines)."""
    params: dict[str, Any] = {
        "SortBy": "CreationTime",
        "SortOrder": "Descending",
        "MaxResults": min(max_results, 100),
    }
    if not all_jobs:
        params["NameContains"] = JOB_NAME_PREFIX
    if status:
        params["StatusEquals"] = status
    jobs = sagemaker.list_hyper_parameter_tuning_jobs(**params)["HyperParameterTuningJobSummaries"]
    if not jobs:
        return []
    width = max(len(job["HyperParameterTuningJobName"]) for job in jobs)
    lines = [f"{'TUNING JOB':<{width}}  {'STATUS':<10}  {'TRIALS':<22}  CREATED"]
    for job in jobs:
        counts = _counts(job.get("TrainingJobStatusCounters", {}))
        lines.append(
            f"{job['HyperParameterTuningJobName']:<{width}}  "
            f"{job['HyperParameterTuningJobStatus']:<10}  {counts:<22}  "
            f"{when(job.get('CreationTime'))}"
        )
    return lines


def when(value: Any) -> str:
    """A time as the listings print it."""
    return value.strftime("%Y-%m-%d %H:%M:%S %Z").strip() if isinstance(value, datetime) else "-"

"""``detrain rehearse --tune``: a small tuning job, run on this machine as SageMaker runs one.

Steps 1-3 are the rehearsal's (detrain/rehearsal.py) with a ``tuning`` block in the trigger
object, so the launcher sends CreateHyperParameterTuningJob to the emulator, as deployed. moto
keeps the tuning job and runs nothing; so here:

4. the trials are drawn from the ranges the tuning job holds (detrain/tuning_trials.py); each
   is created as SageMaker creates a trial (the job definition; the static and the tuned
   hyperparameters and ``_tuning_objective_metric``; a ``<tuning job>-NNN-<hash>`` name) and
   run by the local runner, one after another (``max_parallel_jobs`` is not emulated, nor is
   early stopping); its objective is read from its log by the definition's MetricDefinitions;
5. the best trial, and the summary page (detrain/tuning_summary.py) in the work folder; each
   trial's report.html gets a line back to that page.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from contract.outputs import REPORT_FILE
from detrain import rehearsal, tuning_summary, tuning_trials
from detrain.local_runner import JobResult, LocalRunner
from detrain.storage import Storage
from detrain.training_job import from_description
from launch_training.tuning_request import DEFINITION_FIELDS
from trainer import sample_data

# Three trials of the rehearsal's model over a learning-rate range (the launcher's caps allow 8).
REHEARSAL_TUNING: dict[str, Any] = {
    "objective": "valid_map",
    "strategy": "Random",
    "ranges": {"learning_rate": {"min": 1e-4, "max": 1e-2, "scaling": "Logarithmic"}},
    "max_jobs": 3,
}
TUNING_JOB_FILE = "tuning-job.json"
# CreateTrainingJob fields a trial takes from the tuning job's TrainingJobDefinition.
_TRIAL_FIELDS = (*DEFINITION_FIELDS, "VpcConfig", "CheckpointConfig")


@dataclass(frozen=True)
class TuningOutcome:
    name: str
    how: str  # how the trials were drawn, in words
    trials: list[dict[str, Any]]  # ListTrainingJobsForHyperParameterTuningJob's shape
    best: Mapping[str, Any] | None
    results: list[JobResult]
    summary: Path

    @property
    def succeeded(self) -> bool:
        return self.best is not None


def launched_tuning_job(responses: list[dict]) -> str:
    """The tuning job the launcher says it created; RehearsalError with its reason if none."""
    results = [r for response in responses for r in response.get("results", [response])]
    for result in results:
        if result.get("status") in ("launched", "already_launched") and "tuning_job_name" in result:
            return result["tuning_job_name"]
    reasons = "; ".join(str(r.get("reason") or r.get("status")) for r in results) or "no result"
    raise rehearsal.RehearsalError(f"the launcher created no tuning job: {reasons}")


def rehearse_tuning(
    workdir: Path,
    *,
    tuning: Mapping[str, Any] | None = None,
    dataset: Path | None = None,
    images: int = sample_data.DEFAULT_IMAGES,
    hyperparameters: Mapping[str, str] | None = None,
    out: TextIO = sys.stdout,
    command: list[str] | None = None,
    seed: int = 0,
) -> TuningOutcome:
    """Run the flow with a tuning block (default REHEARSAL_TUNING); ``command`` replaces the
    trainer (tests use a stand-in)."""
    workdir = Path(workdir).resolve()
    (workdir / tuning_summary.SUMMARY_FILE).unlink(missing_ok=True)
    block = dict(tuning or REHEARSAL_TUNING)
    tuned = set(block.get("ranges") or {})
    static = {k: v for k, v in rehearsal.REHEARSAL_HYPERPARAMETERS.items() if k not in tuned}
    body = {"hyperparameters": {**static, **(hyperparameters or {})}, "tuning": block}
    with rehearsal.launched(
        workdir, dataset=dataset, images=images, body=body, out=out, steps=6
    ) as launch:
        import boto3

        name = launched_tuning_job(launch.responses)
        sagemaker = boto3.client("sagemaker")
        described = sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        config = described["HyperParameterTuningJobConfig"]
        definition = described["TrainingJobDefinition"]
        plan = tuning_trials.from_config(config)
        drawn, how = tuning_trials.draw(plan, seed)
        launch.progress(f"running tuning job {name}: {len(drawn)} trials, {how}, one at a time")
        runner = LocalRunner(
            workdir / "jobs", storage=Storage(boto3.client("s3")), command=command, out=out
        )
        trials, results = [], []
        for number, values in enumerate(drawn, 1):
            result, trial = _run_trial(sagemaker, runner, name, number, values, plan, definition)
            results.append(result)
            trials.append(trial)
            value = tuning_summary.objective_of(trial)
            scored = f"{plan.objective} {value:.4g}" if value is not None else "no objective"
            launch.progress.note(
                f"trial {number}/{len(drawn)} {trial['TrainingJobName']} "
                f"({_tuned_text(values)}): {result.status}, {scored}"
            )
        best = tuning_trials.best(trials, plan.direction)
        launch.progress(
            f"best trial: {best['TrainingJobName']} ({plan.objective} "
            f"{tuning_summary.objective_of(best):.4g})"
            if best
            else "no trial has an objective value: no best trial"
        )
        job = _described_job(described, trials, best)
        summary = _write_summary(workdir, job, trials, results, how)
        launch.progress.note(f"summary {summary}")
    return TuningOutcome(name, how, trials, best, results, summary)


def _run_trial(sagemaker, runner, name, number, values, plan, definition):
    """CreateTrainingJob for one trial, as SageMaker makes it, then the local run."""
    trial_name = tuning_trials.trial_name(name, number, values)
    hyperparameters = tuning_trials.trial_hyperparameters(
        definition.get("StaticHyperParameters", {}), values, plan.objective
    )
    request = {k: definition[k] for k in _TRIAL_FIELDS if k in definition}
    sagemaker.create_training_job(
        TrainingJobName=trial_name, HyperParameters=hyperparameters, **request
    )
    description = sagemaker.describe_training_job(TrainingJobName=trial_name)
    if "Environment" in definition:  # moto does not echo it; SageMaker sets it in the container
        description["Environment"] = definition["Environment"]
    started = datetime.now(UTC)
    result = runner.run(from_description(description))
    log = result.run_folder / f"{from_description(description).hosts[0]}.log"
    lines = log.read_text(errors="replace").splitlines() if log.is_file() else []
    value = tuning_trials.final_metric(
        lines, definition["AlgorithmSpecification"]["MetricDefinitions"], plan.objective
    )
    trial: dict[str, Any] = {
        "TrainingJobName": trial_name,
        "TrainingJobArn": description["TrainingJobArn"],
        "TuningJobName": name,
        "CreationTime": description.get("CreationTime", started),
        "TrainingStartTime": started,
        "TrainingEndTime": datetime.now(UTC),
        "TrainingJobStatus": result.status,
        "TunedHyperParameters": dict(values),
        "ObjectiveStatus": "Succeeded" if value is not None else "Failed",
    }
    if value is not None:
        trial["FinalHyperParameterTuningJobObjectiveMetric"] = {
            "Type": plan.direction,
            "MetricName": plan.objective,
            "Value": value,
        }
    if result.failure_reason:
        trial["FailureReason"] = result.failure_reason
    return result, trial


def _described_job(described: Mapping, trials: list[dict], best: Mapping | None) -> dict:
    """DescribeHyperParameterTuningJob as SageMaker would answer it after these trials (moto
    answers a fixed stand-in for the state, counters and best trial)."""
    job = {k: v for k, v in described.items() if k != "ResponseMetadata"}
    statuses = Counter(t["TrainingJobStatus"] for t in trials)
    objectives = Counter(t["ObjectiveStatus"] for t in trials)
    job["HyperParameterTuningJobStatus"] = "Completed"
    job["TrainingJobStatusCounters"] = {
        "Completed": statuses["Completed"],
        "InProgress": 0,
        "RetryableError": 0,
        "NonRetryableError": statuses["Failed"],
        "Stopped": statuses["Stopped"],
    }
    job["ObjectiveStatusCounters"] = {
        "Succeeded": objectives["Succeeded"],
        "Pending": 0,
        "Failed": objectives["Failed"],
    }
    job.pop("BestTrainingJob", None)
    if best is not None:
        job["BestTrainingJob"] = best
    return job


def _write_summary(workdir: Path, job: dict, trials: list, results: list, how: str) -> Path:
    summary = workdir / tuning_summary.SUMMARY_FILE
    links = {}
    for trial, result in zip(trials, results, strict=True):
        report = result.output_data_dir / REPORT_FILE
        if report.is_file():
            links[trial["TrainingJobName"]] = report.relative_to(workdir).as_posix()
            metric = trial.get("FinalHyperParameterTuningJobObjectiveMetric")
            scored = f"{metric['MetricName']} {metric['Value']:.4g}; " if metric else ""
            detail = scored + _tuned_text(trial["TunedHyperParameters"])
            href = Path(*[".."] * (len(report.relative_to(workdir).parts) - 1), summary.name)
            report.write_text(
                tuning_summary.link_back(
                    report.read_text(encoding="utf-8"), job["HyperParameterTuningJobName"],
                    href.as_posix(), detail,
                ),
                encoding="utf-8",
            )  # fmt: skip
    note = f"Rehearsed on this machine: the trials were {how}."
    summary.write_text(
        tuning_summary.summary_html(job, trials, report_links=links, note=note), encoding="utf-8"
    )
    record = {"tuning_job": job, "trials": trials}
    (workdir / TUNING_JOB_FILE).write_text(json.dumps(record, indent=2, default=str) + "\n")
    return summary


def _tuned_text(values: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={tuning_summary.short(v)}" for k, v in sorted(values.items()))

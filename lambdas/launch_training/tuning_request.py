"""A launch request with a ``tuning`` block -> the CreateHyperParameterTuningJob request (pure).

Each trial is the single job that request.py builds for the same request (image, role, keys,
spot, network isolation, inter-container encryption, metric definitions, stopping condition,
warm pool), less its name and its tuned hyperparameters. The tuning block itself is checked by
the contract (contract/tuning.py) against the deployment's caps.

Trials have no CheckpointConfig: a tuning job has one definition for all its trials, so they
would share one checkpoint prefix, and the trainer resumes any checkpoint of the same model it
finds there (another trial's, with other hyperparameters). A trial interrupted on spot starts
again from its first epoch instead.
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateHyperParameterTuningJob.html
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from typing import Any

from contract.hyperparameters import HyperparameterError, from_values, to_job_strings
from contract.launcher_settings import LauncherSettings
from contract.names import JOB_NAME_PREFIX
from contract.sagemaker import JOB_NAME_PATTERN
from contract.tuning import TUNING_JOB_NAME_MAX, Tuning, TuningError, parse, tuning_job_config
from launch_training.events import Refused
from launch_training.request import LaunchRequest, create_training_job_request

# What a trial repeats of the single job's request (HyperParameterTrainingJobDefinition).
DEFINITION_FIELDS = (
    "AlgorithmSpecification",
    "RoleArn",
    "InputDataConfig",
    "OutputDataConfig",
    "ResourceConfig",
    "StoppingCondition",
    "EnableNetworkIsolation",
    "EnableInterContainerTrafficEncryption",
    "EnableManagedSpotTraining",
    "Environment",
)
_HASH_CHARS = 9
_SLUG_MAX = TUNING_JOB_NAME_MAX - len(JOB_NAME_PREFIX) - 1 - _HASH_CHARS


def tuning_job_name(dataset: str, identity: str) -> str:
    """``detrain-<dataset, cut>-<hash>``: at most 32 characters, the same for a retry."""
    slug = re.sub(r"[^a-zA-Z0-9]+", "-", dataset).strip("-")[:_SLUG_MAX].strip("-")
    digest = hashlib.sha256(f"tuning#{identity}".encode()).hexdigest()[:_HASH_CHARS]
    return f"{JOB_NAME_PREFIX}{slug or 'dataset'}-{digest}"


def requested_tuning_job_name(name: str) -> str:
    prefixed = name if name.startswith(JOB_NAME_PREFIX) else JOB_NAME_PREFIX + name
    if len(prefixed) > TUNING_JOB_NAME_MAX or not JOB_NAME_PATTERN.fullmatch(prefixed):
        raise Refused(
            f"'job_name' = {name!r} is not a valid tuning job name; allowed: at most "
            f"{TUNING_JOB_NAME_MAX} characters (with the {JOB_NAME_PREFIX!r} prefix), letters, "
            "digits and hyphens, starting and ending with a letter or digit"
        )
    return prefixed


def parse_tuning(launch: LaunchRequest, settings: LauncherSettings) -> Tuning:
    try:
        return parse(
            launch.overrides.tuning,
            launch.overrides.hyperparameters,
            max_jobs_cap=settings.max_tuning_jobs,
            max_parallel_cap=settings.max_parallel_tuning_jobs,
        )
    except (TuningError, HyperparameterError) as error:
        raise Refused(str(error)) from None


def create_tuning_job_request(launch: LaunchRequest, settings: LauncherSettings) -> dict[str, Any]:
    """The keyword arguments of sagemaker.create_hyper_parameter_tuning_job; raises Refused."""
    overrides = launch.overrides
    tuning = parse_tuning(launch, settings)
    name = (
        requested_tuning_job_name(overrides.job_name)
        if overrides.job_name
        else tuning_job_name(launch.dataset, launch.identity)
    )
    single = dataclasses.replace(launch, overrides=dataclasses.replace(overrides, job_name=None))
    job = create_training_job_request(single, settings)
    definition = {field: job[field] for field in DEFINITION_FIELDS}
    definition["StaticHyperParameters"] = _static_hyperparameters(overrides.hyperparameters)
    defined = [d["Name"] for d in job["AlgorithmSpecification"]["MetricDefinitions"]]
    if tuning.objective not in defined:  # the contract's tables agree; this keeps them so
        raise Refused(f"objective {tuning.objective!r} is not one of the job's metrics {defined}")
    epochs = from_values(overrides.hyperparameters).epochs
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": tuning_job_config(tuning, epochs),
        "TrainingJobDefinition": definition,
        "Tags": job["Tags"],
    }


def _static_hyperparameters(values: dict[str, Any]) -> dict[str, str]:
    """The request's fixed hyperparameters (and the model family), as the trainer reads them;
    the rest take the trainer's defaults, so a recipe's learning rate follows a tuned
    batch size."""
    strings = to_job_strings(from_values(values))
    return {key: strings[key] for key in ("model", *values)}

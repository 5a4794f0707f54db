from datetime import UTC, datetime
from pathlib import Path

import pytest

from contract.names import MODELS_PREFIX, JobNameError, check_job_name
from contract.outputs import MODEL_ARCHIVE, OUTPUT_ARCHIVE, job_output_key
from detrain.training_job import (
    JobSpecError,
    for_local_folder,
    from_description,
    local_job_name,
)


def test_description_becomes_the_job_the_runner_executes(create_job, bucket):
    description = create_job(bucket)

    job = from_description(description)

    assert job.name == description["TrainingJobName"]
    assert job.hyperparameters == {"epochs": "2", "model": "efficientdet"}
    assert [(c.name, c.uri, c.input_mode) for c in job.channels] == [
        ("training", f"s3://{bucket}/datasets/shapes/", "File")
    ]
    assert job.artifact_uri("model.tar.gz") == (
        f"s3://{bucket}/models/{job.name}/output/model.tar.gz"
    )
    for archive in (MODEL_ARCHIVE, OUTPUT_ARCHIVE):  # the contract's key rule, as a URI
        key = job_output_key(MODELS_PREFIX, job.name, archive)
        assert job.artifact_uri(archive) == f"s3://{bucket}/{key}"
    with pytest.raises(ValueError, match=r"allowed 'model\.tar\.gz', 'output\.tar\.gz'"):
        job.artifact_uri("report.html")
    assert job.checkpoint_uri == f"s3://{bucket}/checkpoints/{job.name}/"
    assert job.max_runtime_seconds == 3600
    assert job.environment == {"DETRAIN_TEST": "yes"}
    assert job.hosts == ("algo-1",)


def test_pipe_mode_is_refused_with_the_modes_allowed(create_job, bucket):
    description = create_job(
        bucket, AlgorithmSpecification={"TrainingImage": "x", "TrainingInputMode": "Pipe"}
    )
    description["InputDataConfig"][0].pop("InputMode")

    with pytest.raises(JobSpecError, match=r"'Pipe'.*allowed: File, FastFile"):
        from_description(description)


def test_local_folder_job_keeps_artifacts_in_the_run_folder(tmp_path):
    (tmp_path / "my data").mkdir()

    job = for_local_folder(
        tmp_path / "my data", hyperparameters={"epochs": "1"}, run_folder=tmp_path / "runs"
    )

    check_job_name(job.name)
    assert job.name.startswith("local-my-data-")
    assert job.channels[0].uri == (tmp_path / "my data").resolve().as_uri()
    assert job.artifact_uri("model.tar.gz").startswith((tmp_path / "runs").as_uri())


def test_local_validation_folder_becomes_the_validation_channel(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "valid").mkdir()

    job = for_local_folder(
        tmp_path / "train", hyperparameters={}, run_folder=tmp_path, validation=tmp_path / "valid"
    )

    assert [(c.name, c.uri) for c in job.channels] == [
        ("training", (tmp_path / "train").as_uri()),
        ("validation", (tmp_path / "valid").as_uri()),
    ]


def test_local_folder_must_exist(tmp_path):
    with pytest.raises(JobSpecError, match="does not exist"):
        for_local_folder(tmp_path / "missing", hyperparameters={}, run_folder=tmp_path)


def test_local_job_names_are_valid_sagemaker_names():
    name = local_job_name(
        Path("/x/" + "ünïcode dataset_" * 10), datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    )

    assert check_job_name(name) == name
    assert name.endswith("-20250102-030405")
    with pytest.raises(JobNameError, match="not allowed"):
        check_job_name("bad_name")

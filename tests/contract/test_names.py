"""contract.names: SageMaker's job-name rule, the one every launch path checks."""

from __future__ import annotations

import pytest

from contract.names import (
    JOB_NAME_PREFIX,
    JobNameError,
    check_job_name,
    checkpoints_uri,
    models_uri,
    prefixed_job_name,
)


@pytest.mark.parametrize("name", ["a", "A1", "a-b", "a--b", "x" * 63, "1-2-3"])
def test_sagemaker_accepts_these_names(name):
    assert check_job_name(name) == name


@pytest.mark.parametrize("name", ["", "-a", "a-", "a_b", "a.b", "a b", "x" * 64, "é", "a\n"])
def test_sagemaker_refuses_these_names(name):
    with pytest.raises(JobNameError, match="allowed: 1-63 letters, digits and hyphens"):
        check_job_name(name)


def test_the_launcher_prefix_counts_towards_the_63_characters():
    room = 63 - len(JOB_NAME_PREFIX)

    assert prefixed_job_name("x" * room) == JOB_NAME_PREFIX + "x" * room
    assert prefixed_job_name(JOB_NAME_PREFIX + "run") == JOB_NAME_PREFIX + "run"
    with pytest.raises(JobNameError):
        prefixed_job_name("x" * (room + 1))


def test_job_output_and_checkpoint_locations():
    assert models_uri("b") == "s3://b/models/"
    assert checkpoints_uri("b", "detrain-x") == "s3://b/checkpoints/detrain-x/"


def test_a_refused_requested_name_is_named_as_requested_with_the_prefix_rule():
    with pytest.raises(JobNameError) as refused:
        prefixed_job_name("exp_7")

    assert str(refused.value).startswith(
        "'job_name' = 'exp_7' is not a valid training job name; allowed: at most 63 characters "
        f"(with the {JOB_NAME_PREFIX!r} prefix)"
    )

"""contract.outputs: SageMaker's archive names and the one rule for where a job's archives go."""

from __future__ import annotations

import pytest

from contract import outputs
from contract.names import MODELS_PREFIX, models_uri


def test_the_archive_names_are_sagemakers():
    """SageMaker tars /opt/ml/model into model.tar.gz and /opt/ml/output/data into
    output.tar.gz; a job's archives are found by these names, nothing else."""
    assert (outputs.MODEL_ARCHIVE, outputs.OUTPUT_ARCHIVE) == ("model.tar.gz", "output.tar.gz")


def test_a_jobs_archive_lies_under_its_name_in_output():
    assert outputs.job_output_key(MODELS_PREFIX, "detrain-x", outputs.MODEL_ARCHIVE) == (
        "models/detrain-x/output/model.tar.gz"
    )
    assert outputs.job_output_key("", "j", outputs.OUTPUT_ARCHIVE) == "j/output/output.tar.gz"
    # The launcher's S3OutputPath is the bucket's models/ prefix: the same key, as a URI.
    uri = models_uri("b") + outputs.job_output_key("", "j", outputs.MODEL_ARCHIVE)
    assert uri == "s3://b/" + outputs.job_output_key(MODELS_PREFIX, "j", outputs.MODEL_ARCHIVE)


@pytest.mark.parametrize("archive", ["model.tar", "report.html", outputs.MODEL_WEIGHTS_FILE, ""])
def test_only_the_two_archives_have_a_key(archive):
    with pytest.raises(ValueError, match=r"allowed 'model\.tar\.gz', 'output\.tar\.gz'"):
        outputs.job_output_key(MODELS_PREFIX, "j", archive)


def test_file_names_are_plain_distinct_names():
    names = [
        value
        for key, value in vars(outputs).items()
        if key.isupper() and key != "MAX_RUNTIME_VARIABLE"
    ]

    assert len(set(names)) == len(names)
    assert all("/" not in name and name.strip() == name and name for name in names)
    assert outputs.MAX_RUNTIME_VARIABLE == "DETRAIN_MAX_RUNTIME_SECONDS"

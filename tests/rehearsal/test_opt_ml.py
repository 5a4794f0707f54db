"""The /opt/ml tree the runner lays out matches SageMaker's contract."""

import json
from dataclasses import replace

import pytest

from contract.layout import Layout
from detrain import opt_ml
from detrain.training_job import JobSpecError, from_description


def _read(layout: Layout, name: str):
    return json.loads((layout.config / name).read_text())


def test_config_files_have_sagemaker_names_and_shapes(create_job, bucket, tmp_path):
    job = from_description(create_job(bucket))
    layout = Layout(tmp_path / "algo-1")

    opt_ml.write_config(job, layout, host="algo-1", interface="lo")

    assert sorted(p.name for p in layout.config.iterdir()) == [
        "checkpointconfig.json",
        "hyperparameters.json",
        "inputdataconfig.json",
        "resourceconfig.json",
    ]
    hyperparameters = _read(layout, "hyperparameters.json")
    assert hyperparameters == {"epochs": "2", "model": "efficientdet"}
    assert all(isinstance(v, str) for v in hyperparameters.values())
    assert _read(layout, "inputdataconfig.json") == {
        "training": {
            "TrainingInputMode": "File",
            "S3DistributionType": "FullyReplicated",
            "RecordWrapperType": "None",
        }
    }
    resources = _read(layout, "resourceconfig.json")
    assert resources["current_host"] == "algo-1"
    assert resources["hosts"] == ["algo-1"]
    assert resources["network_interface_name"] == "lo"
    assert resources["current_instance_type"] == "ml.g5.xlarge"
    assert _read(layout, "checkpointconfig.json") == {
        "LocalPath": "/opt/ml/checkpoints",
        "S3Uri": f"s3://{bucket}/checkpoints/{job.name}/",
    }
    for folder in (layout.model, layout.output_data, layout.base / "checkpoints"):
        assert folder.is_dir()


def test_content_type_is_written_when_the_channel_has_one(create_job, bucket, tmp_path):
    description = create_job(bucket)
    description["InputDataConfig"][0]["ContentType"] = "application/x-image"
    layout = Layout(tmp_path)

    opt_ml.write_config(from_description(description), layout, host="algo-1", interface="eth0")

    assert _read(layout, "inputdataconfig.json")["training"]["ContentType"] == "application/x-image"


def test_no_checkpoint_config_no_file(create_job, bucket, tmp_path):
    job = replace(from_description(create_job(bucket)), checkpoint_uri=None)

    opt_ml.write_config(job, Layout(tmp_path), host="algo-1", interface="lo")

    assert not (tmp_path / "input" / "config" / "checkpointconfig.json").exists()


def test_each_host_of_two_gets_its_own_resource_config(create_job, bucket, tmp_path):
    job = replace(from_description(create_job(bucket)), instance_count=2)

    for host in job.hosts:
        opt_ml.write_config(job, Layout(tmp_path / host), host=host, interface="lo")

    first, second = (
        _read(Layout(tmp_path / h), "resourceconfig.json") for h in ("algo-1", "algo-2")
    )
    assert (first["current_host"], second["current_host"]) == ("algo-1", "algo-2")
    assert first["hosts"] == second["hosts"] == ["algo-1", "algo-2"]
    assert first["instance_groups"][0]["hosts"] == ["algo-1", "algo-2"]


def test_sharded_channel_splits_keys_between_hosts():
    names = [f"f{i}" for i in range(5)]
    hosts = ("algo-1", "algo-2")

    assert opt_ml.shard(names, "algo-1", hosts, "ShardedByS3Key") == ["f0", "f2", "f4"]
    assert opt_ml.shard(names, "algo-2", hosts, "ShardedByS3Key") == ["f1", "f3"]
    assert opt_ml.shard(names, "algo-2", hosts, "FullyReplicated") == names


def test_non_string_hyperparameters_are_refused(create_job, bucket, tmp_path):
    job = replace(from_description(create_job(bucket)), hyperparameters={"epochs": 2})

    with pytest.raises(JobSpecError, match="'epochs' is not a string"):
        opt_ml.write_config(job, Layout(tmp_path), host="algo-1", interface="lo")


def test_checkpoint_path_outside_opt_ml_is_refused_for_a_local_process(
    create_job, bucket, tmp_path
):
    job = replace(from_description(create_job(bucket)), checkpoint_path="/tmp/ckpt")

    with pytest.raises(JobSpecError, match="'/tmp/ckpt' is outside /opt/ml"):
        opt_ml.checkpoint_path(job, Layout(tmp_path))

"""contract.layout: one /opt/ml layout for the trainer, the local runner and the test trees."""

from __future__ import annotations

from pathlib import Path

import pytest

from contract.layout import CHECKPOINT_PATH, Layout


def test_every_path_derives_from_the_base(tmp_path):
    layout = Layout(tmp_path)

    assert layout.hyperparameters_file == tmp_path / "input/config/hyperparameters.json"
    assert layout.input_data_config_file == tmp_path / "input/config/inputdataconfig.json"
    assert layout.resource_config_file == tmp_path / "input/config/resourceconfig.json"
    assert layout.checkpoint_config_file == tmp_path / "input/config/checkpointconfig.json"
    assert layout.channel("training") == tmp_path / "input/data/training"
    assert (layout.model, layout.output_data) == (tmp_path / "model", tmp_path / "output/data")
    assert (layout.failure, layout.checkpoints) == (
        tmp_path / "output/failure",
        tmp_path / "checkpoints",
    )


def test_sagemaker_base_dir_replaces_opt_ml(tmp_path):
    assert Layout.from_environ({"SAGEMAKER_BASE_DIR": str(tmp_path)}).base == tmp_path
    assert Layout.from_environ({}).base == Path("/opt/ml")
    assert Layout(str(tmp_path)).base == tmp_path


@pytest.mark.parametrize(
    ("container_path", "relative"),
    [
        (CHECKPOINT_PATH, "checkpoints"),
        ("/opt/ml/checkpoints/run/", "checkpoints/run"),
        ("/opt/ml", ""),
    ],
)
def test_a_container_path_maps_under_the_base(tmp_path, container_path, relative):
    assert Layout(tmp_path).host_path(container_path) == tmp_path / relative


@pytest.mark.parametrize(
    "container_path", ["/tmp/checkpoints", "/opt/mlx/checkpoints", "checkpoints"]
)
def test_a_path_outside_opt_ml_has_no_host_folder(tmp_path, container_path):
    assert Layout(tmp_path).host_path(container_path) is None

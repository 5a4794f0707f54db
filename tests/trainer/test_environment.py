import json
from pathlib import Path

import pytest

from trainer import environment
from trainer.errors import ConfigError


def _base(tmp_path: Path, channels=("training",)) -> Path:
    base = tmp_path / "ml"
    (base / "input" / "config").mkdir(parents=True)
    for name in channels:
        (base / "input" / "data" / name).mkdir(parents=True)
    return base


def _write(base: Path, name: str, value) -> None:
    (base / "input" / "config" / name).write_text(json.dumps(value))


def test_base_dir_follows_sagemaker_base_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("SAGEMAKER_BASE_DIR", str(tmp_path))
    assert environment.base_dir() == tmp_path
    monkeypatch.delenv("SAGEMAKER_BASE_DIR")
    assert environment.base_dir() == Path("/opt/ml")


def test_raw_string_hyperparameters(tmp_path):
    base = _base(tmp_path)
    _write(base, "hyperparameters.json", {"model": "retinanet", "epochs": "3", "amp": "false"})
    hp = environment.load(base).hyperparameters
    assert (hp.model, hp.backbone, hp.epochs, hp.amp) == ("retinanet", "resnet50_fpn", 3, False)


def test_sdk_json_encoded_hyperparameters_ignore_sagemaker_keys(tmp_path):
    base = _base(tmp_path)
    _write(
        base,
        "hyperparameters.json",
        {
            "model": '"efficientdet"',
            "learning_rate": "0.002",
            "pretrained": "false",
            "sagemaker_program": '"train.py"',
            "sagemaker_region": '"us-east-1"',
        },
    )
    hp = environment.load(base).hyperparameters
    assert (hp.model, hp.backbone, hp.learning_rate, hp.pretrained) == (
        "efficientdet",
        "tf_lite0",
        0.002,
        False,
    )


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"epoch": "3"}, "'epoch'"),
        ({"model": "yolo"}, "'yolo'"),
        ({"model": "efficientdet", "backbone": "resnet18_fpn"}, "tf_lite0"),
        ({"batch_size": "many"}, "'many'"),
    ],
)
def test_bad_hyperparameter_names_key_value_and_allowed(tmp_path, values, named):
    base = _base(tmp_path)
    _write(base, "hyperparameters.json", values)
    with pytest.raises(ConfigError, match=named):
        environment.load(base)


def test_channels_from_inputdataconfig(tmp_path):
    base = _base(tmp_path, channels=("training", "validation"))
    _write(
        base,
        "inputdataconfig.json",
        {"training": {"TrainingInputMode": "FastFile"}, "validation": {}},
    )
    env = environment.load(base)
    assert env.channels == {
        "training": base / "input/data/training",
        "validation": base / "input/data/validation",
    }


@pytest.mark.parametrize(
    ("config", "channels", "message"),
    [
        ({"training": {"TrainingInputMode": "Pipe"}}, ("training",), "'Pipe'.*File, FastFile"),
        ({"validation": {}}, ("validation",), "'training' channel is required"),
        ({"train": {}}, ("train",), "'train' is not used.*training, validation"),
        ({"training": {}}, (), "does not exist"),
    ],
)
def test_bad_channels(tmp_path, config, channels, message):
    base = _base(tmp_path, channels=channels)
    _write(base, "inputdataconfig.json", config)
    with pytest.raises(ConfigError, match=message):
        environment.load(base)


def test_resource_and_checkpoint_config(tmp_path):
    base = _base(tmp_path)
    _write(base, "resourceconfig.json", {"current_host": "algo-2", "hosts": ["algo-1", "algo-2"]})
    _write(base, "checkpointconfig.json", {"LocalPath": "/opt/ml/checkpoints/run"})
    env = environment.load(base)
    assert (env.current_host, env.hosts) == ("algo-2", ("algo-1", "algo-2"))
    assert env.checkpoint_dir == base / "checkpoints" / "run"
    assert env.model_dir == base / "model"
    assert env.failure_file == base / "output" / "failure"


def test_defaults_without_config_files(tmp_path):
    env = environment.load(_base(tmp_path))
    assert env.hosts == ("algo-1",) and env.checkpoint_dir == env.base_dir / "checkpoints"


def test_invalid_json_is_named(tmp_path):
    base = _base(tmp_path)
    (base / "input" / "config" / "hyperparameters.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"hyperparameters\.json is not valid JSON"):
        environment.load(base)

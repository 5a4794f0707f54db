"""Fixtures shared by every test layer.

``moto_server``: one real moto server on loopback for the session (AWS APIs over
HTTP, visible to subprocesses such as the CLI). ``aws``: per test, a clean state
and an environment whose boto3 clients (in this process and in children) talk to it.
Both come from detrain/emulator.py, as the rehearsal's and the benchmarks' do.
``launcher_env``: the launcher function's one test environment, set in os.environ.
``trained_model``: one tiny real model for the session (EfficientDet-Lite0 at 128 px, 1 epoch
on 8 generated images, trained by ``training_image/train train``), for the serving tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from contract.layout import BASE_DIR_VARIABLE, Layout
from detrain import emulator
from trainer import sample_data

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATASETS = REPO_ROOT.parent / "shared" / "datasets"
REGION = "us-east-1"
ACCOUNT = emulator.EMULATED_ACCOUNT
TINY_TRAINING = {
    "model": "efficientdet",
    "backbone": "tf_lite0",
    "pretrained": "false",
    "epochs": "1",
    "batch_size": "4",
    "image_size": "128",
    "num_workers": "0",
    "valid_fraction": "0.25",
}


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    with emulator.moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def aws(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A clean emulated AWS for one test; returns the endpoint URL."""
    emulator.reset(moto_server)
    env = {**emulator.client_environment(moto_server, REGION, "testing"), "AWS_MAX_ATTEMPTS": "1"}
    for key, value in env.items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    yield moto_server


@pytest.fixture
def launcher_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The launcher function's environment (emulator.launcher_settings), set in os.environ."""
    environment = emulator.launcher_settings(ACCOUNT, REGION).to_environ()
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    return environment


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    if not SHARED_DATASETS.is_dir():
        pytest.skip(f"the shared datasets are not at {SHARED_DATASETS}")
    return SHARED_DATASETS


@pytest.fixture
def clean_env() -> dict[str, str]:
    """os.environ for a child process, as the tests see it."""
    return dict(os.environ)


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model folder written by a real `train train` run (1 epoch, tiny)."""
    layout = Layout(tmp_path_factory.mktemp("trained") / "opt-ml")
    sample_data.generate(layout.channel("training"), images=8, image_size=64)
    layout.config.mkdir(parents=True)
    layout.hyperparameters_file.write_text(json.dumps(TINY_TRAINING))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAGEMAKER_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    run = subprocess.run(
        [str(REPO_ROOT / "training_image" / "train"), "train"],
        env={**env, BASE_DIR_VARIABLE: str(layout.base), "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return layout.model

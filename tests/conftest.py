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

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from detrain import emulator
from tests.support.opt_ml import TINY, OptMl, run_train
from trainer import sample_data

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATASETS = REPO_ROOT.parent / "shared" / "datasets"
REGION = "us-east-1"
ACCOUNT = emulator.EMULATED_ACCOUNT


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
    opt_ml = OptMl(tmp_path_factory.mktemp("trained") / "opt-ml")
    sample_data.generate(opt_ml.channel("training"), images=8, image_size=64)
    opt_ml.hyperparameters({**TINY, "valid_fraction": "0.25"})
    run = run_train(opt_ml, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return opt_ml.model_dir

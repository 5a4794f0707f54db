"""Fixtures for the trainer tests: a fake /opt/ml under tmp_path, and one finished job."""

from pathlib import Path

import pytest

from tests.support.finished_job import FinishedJob, train_tiny_job
from tests.support.opt_ml import OptMl


@pytest.fixture
def opt_ml(tmp_path: Path) -> OptMl:
    base = tmp_path / "opt-ml"
    (base / "input" / "config").mkdir(parents=True)
    (base / "input" / "data").mkdir(parents=True)
    return OptMl(base)


@pytest.fixture(scope="session")
def finished_job(tmp_path_factory: pytest.TempPathFactory) -> FinishedJob:
    """One real `train train` run, finished, shared by the tests that read what it leaves
    (tests/support/finished_job.py); a test must not change its files."""
    job = train_tiny_job(tmp_path_factory.mktemp("finished-job") / "opt-ml")
    assert job.run.returncode == 0, job.run.stdout[-3000:] + job.run.stderr[-3000:]
    return job

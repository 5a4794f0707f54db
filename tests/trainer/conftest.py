"""Fixtures for the trainer tests: a fake /opt/ml under tmp_path."""

from pathlib import Path

import pytest

from tests.support.opt_ml import OptMl


@pytest.fixture
def opt_ml(tmp_path: Path) -> OptMl:
    base = tmp_path / "opt-ml"
    (base / "input" / "config").mkdir(parents=True)
    (base / "input" / "data").mkdir(parents=True)
    return OptMl(base)

"""A new .venv is refused up front, with the figures, when the disk cannot hold it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# What the Makefile's venv target depends on: a copy of these makes a clone with no .venv.
VENV_INPUTS = [
    "Makefile",
    "requirements.txt",
    "requirements-dev.txt",
    "training_image/requirements.txt",
    "training_image/requirements-nodeps.txt",
    "pyproject.toml",
    "package.json",
    "package-lock.json",
]


def make(folder: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", *arguments, f"PYTHON={sys.executable}"],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )


def clone_without_venv(folder: Path) -> Path:
    for name in VENV_INPUTS:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, folder / name)
    return folder


def test_a_disk_too_small_stops_make_venv_before_pip_and_names_the_figures(tmp_path):
    clone = clone_without_venv(tmp_path)

    result = make(clone, "venv", "NEEDS_DISK_MB=999999999")

    assert result.returncode != 0
    message = result.stderr.splitlines()[0]
    assert "need about 999999999 MB of disk" in message
    free_mb = shutil.disk_usage(clone).free // 2**20
    found = int(message.split("found ")[1].split(" MB free")[0])
    assert abs(found - free_mb) < 1024, (found, free_mb)
    assert "NEEDS_DISK_MB=0" in message
    assert not (clone / ".venv").exists(), "nothing is half-made"


def test_the_check_passes_when_the_disk_is_big_enough_or_it_is_skipped(tmp_path):
    clone = clone_without_venv(tmp_path)

    assert make(clone, "-s", "disk-check", "NEEDS_DISK_MB=1").returncode == 0
    assert make(clone, "-s", "disk-check", "NEEDS_DISK_MB=0").returncode == 0

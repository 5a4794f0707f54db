"""`make` finds a Python the pins are tested on, or says in one line which versions work."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def claimed_pythons() -> list[str]:
    """The Makefile's TESTED_PYTHONS, in its order."""
    for line in (REPO_ROOT / "Makefile").read_text().splitlines():
        if line.startswith("TESTED_PYTHONS :="):
            return line.split(":=")[1].split()
    raise AssertionError("the Makefile sets no TESTED_PYTHONS")


def python_check(path: str, **variables: str) -> subprocess.CompletedProcess[str]:
    assignments = [f"{name}={value}" for name, value in variables.items()]
    return subprocess.run(
        ["make", "--no-print-directory", "-s", "python-check", *assignments],
        cwd=REPO_ROOT,
        env={**os.environ, "PATH": path},
        capture_output=True,
        text=True,
        check=False,
    )


def fake_program(folder: Path, name: str, script: str) -> Path:
    program = folder / name
    program.write_text(f"#!/bin/sh\n{script}\n")
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    return program


def test_a_tested_python_passes() -> None:
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert running in claimed_pythons(), "the suite itself runs on a tested Python"
    result = python_check(os.environ["PATH"], PYTHON=sys.executable)
    assert result.returncode == 0, result.stderr


def test_no_tested_python_on_path_names_the_versions_and_the_override(tmp_path: Path) -> None:
    # A pyenv shim whose version is not installed: on PATH, but it cannot run.
    fake_program(
        tmp_path, "python3.11", 'echo "pyenv: python3.11: command not found" >&2; exit 127'
    )
    result = python_check(f"{tmp_path}{os.pathsep}/usr/bin{os.pathsep}/bin")
    assert result.returncode != 0
    first_line = result.stderr.splitlines()[0]
    assert f"needs Python {' or '.join(claimed_pythons())} (" in first_line
    assert "found none" in first_line
    assert "PYTHON=/path/to/python3.11" in first_line


def test_an_untested_version_passed_as_python_is_refused_by_name(tmp_path: Path) -> None:
    python310 = fake_program(tmp_path, "python3.10", "echo 3.10")
    result = python_check(os.environ["PATH"], PYTHON=str(python310))
    assert "3.10" not in claimed_pythons()
    assert result.returncode != 0
    assert "found 3.10" in result.stderr.splitlines()[0]

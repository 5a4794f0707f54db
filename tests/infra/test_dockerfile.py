"""training_image/Dockerfile's flavours: ACCELERATOR=cuda installs NVIDIA's forward-compatibility
package for torch's CUDA build, ACCELERATOR=cpu (the serving image) skips it cleanly, and a torch
build that does not match the flavour fails the build with the fix.

No Docker engine runs here: the step's own shell command runs under /bin/sh, as the build runs
it, with stand-ins for python's torch query, dpkg and apt-get (apt-get's install stops the run
before it could touch this machine)."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO_ROOT / "training_image" / "Dockerfile"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
STOPPED_AT_INSTALL = 97


def _instructions() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined as Docker joins them."""
    lines = re.sub(r"\\\n", "", DOCKERFILE.read_text()).splitlines()
    return [line for line in lines if line and not line.startswith("#")]


def _compat_step() -> str:
    (step,) = [i for i in _instructions() if i.startswith("RUN ") and "cuda-compat" in i]
    return step.removeprefix("RUN ")


def _executable(path: Path, body: str) -> None:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _run_compat_step(tmp_path: Path, *, accelerator: str, torch_cuda: str) -> tuple[int, str, str]:
    """(exit status, output, the commands the stand-ins were asked to run)."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir()
    calls.write_text("")
    _executable(
        bin_dir / "python",
        'case "$2" in *torch.version.cuda*) echo "$TORCH_CUDA" ;; '
        '*urlretrieve*) echo "urlretrieve $3" >> "$CALLS" ;; '
        '*) exec python3 "$@" ;; esac',
    )
    _executable(bin_dir / "dpkg", 'echo "dpkg $*" >> "$CALLS"')
    _executable(
        bin_dir / "apt-get",
        f'echo "apt-get $*" >> "$CALLS"; [ "$1" = install ] && exit {STOPPED_AT_INSTALL}; exit 0',
    )
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "CALLS": str(calls),
        "TORCH_CUDA": torch_cuda,
        "ACCELERATOR": accelerator,
        "TORCH_INDEX_URL": CPU_INDEX if not torch_cuda else "",
        "CUDA_KEYRING_URL": "https://example.invalid/cuda-keyring.deb",
    }
    done = subprocess.run(
        ["/bin/sh", "-c", _compat_step()], env=env, capture_output=True, text=True, timeout=60
    )
    return done.returncode, done.stdout + done.stderr, calls.read_text()


def test_the_accelerator_is_a_build_arg_that_defaults_to_cuda():
    assert "ARG ACCELERATOR=cuda" in _instructions()


def test_the_cpu_flavour_skips_the_compat_package_cleanly(tmp_path):
    status, output, calls = _run_compat_step(tmp_path, accelerator="cpu", torch_cuda="")

    assert status == 0, output
    assert "no cuda-compat package" in output
    assert calls == ""  # no keyring download, no apt


def test_the_cuda_flavour_installs_the_compat_package_of_torchs_cuda(tmp_path):
    status, output, calls = _run_compat_step(tmp_path, accelerator="cuda", torch_cuda="12.6")

    assert status == STOPPED_AT_INSTALL, output
    assert "dpkg -i /tmp/cuda-keyring.deb" in calls
    assert "apt-get install -y --no-install-recommends cuda-compat-12-6" in calls


@pytest.mark.parametrize(
    ("accelerator", "torch_cuda", "says"),
    [
        ("cuda", "", "pip installed torch's CPU build"),
        ("cpu", "12.6", "pip installed torch's CUDA 12.6 build"),
        ("gpu", "12.6", "ACCELERATOR=gpu is not allowed; allowed: cuda, cpu"),
    ],
    ids=["cuda-with-cpu-torch", "cpu-with-cuda-torch", "unknown"],
)
def test_a_flavour_that_does_not_match_torch_fails_the_build(
    tmp_path, accelerator, torch_cuda, says
):
    status, output, calls = _run_compat_step(
        tmp_path, accelerator=accelerator, torch_cuda=torch_cuda
    )

    assert status == 1
    assert says in output
    assert calls == ""

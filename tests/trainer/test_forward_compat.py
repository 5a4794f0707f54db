"""CUDA forward compatibility at start-up: the decision, and `train` re-executing itself."""

import os
import shutil
import subprocess
import sys
import zlib  # noqa: F401  (maps the real libz this test copies in as a stand-in libcuda)
from pathlib import Path

import pytest

from tests.support.opt_ml import TINY, TRAIN, train_env
from trainer import errors
from trainer import forward_compat as fc

PROPRIETARY = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  {}  Sun May 12 19:39:15 UTC 2024\n"
OPEN = "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  {}  Release Build  (dvs-builder)\n"
GCC = "GCC version:  gcc version 12.3.0 (Ubuntu 12.3.0-1ubuntu1~22.04)\n"
CU126 = "560.35.05"  # cuda-compat-12-6's libcuda
CU130 = "580.95.05"  # cuda-compat-13-0's libcuda


def driver_file(version: str, template: str = PROPRIETARY) -> str:
    return template.format(version) + GCC


@pytest.mark.parametrize(
    ("driver_text", "compat", "verdict", "host"),
    [
        # no driver at all: a CPU host or a local run
        (None, CU126, "cpu", None),
        (None, None, "cpu", None),
        # SageMaker's g4dn / g5 / p3 / p4d (470), g6 / p5 (535), p5e / p5en (550), newer (580)
        (driver_file("470.256.02"), CU126, "compat", "470.256.02"),
        (driver_file("535.183.01"), CU126, "compat", "535.183.01"),
        (driver_file("550.163.01"), CU126, "compat", "550.163.01"),
        (driver_file("580.65.06"), CU126, "native", "580.65.06"),
        (driver_file("595.45.04"), CU126, "native", "595.45.04"),
        # the CUDA 13.0 override: R470 is outside cuda-compat-13-0's support
        (driver_file("470.256.02"), CU130, "too old", "470.256.02"),
        (driver_file("535.183.01"), CU130, "compat", "535.183.01"),
        (driver_file("550.163.01"), CU130, "compat", "550.163.01"),
        (driver_file("580.65.06"), CU130, "native", "580.65.06"),
        # older than any supported branch: left to the trainer's clear failure
        (driver_file("460.106.00"), CU126, "too old", "460.106.00"),
        (driver_file("470.42.01"), CU126, "too old", "470.42.01"),
        # the open kernel module's wording, and /sys/module/nvidia/version's bare version
        (driver_file("535.54.03", OPEN), CU126, "compat", "535.54.03"),
        ("550.163.01\n", CU126, "compat", "550.163.01"),
        # garbage in the driver file, or no compat package: the environment is left alone
        ("garbage \x00\x01 Kernel Module", CU126, "left alone", None),
        ("", CU126, "left alone", None),
        (driver_file("470.256.02"), None, "left alone", "470.256.02"),
    ],
)
def test_the_decision_on_each_driver_file(driver_text, compat, verdict, host):
    decision = fc.decide(driver_text, compat)

    assert (decision.verdict, decision.host, decision.compat) == (verdict, host, compat)
    assert decision.use_compat == (verdict == "compat")
    line = decision.describe()
    assert line.startswith(f"CUDA forward compatibility: host driver {host or 'none'}, ")
    assert f"compat package {compat or 'none'}: {verdict} (" in line


def test_a_too_old_driver_names_the_supported_floor():
    decision = fc.decide(driver_file("460.106.00"), CU126)

    assert "drivers >= 470.57.02 only" in decision.reason


def test_garbage_is_quoted_in_the_log_line():
    decision = fc.decide("NVRM version: something new\n", CU126)

    assert "'NVRM version: something new'" in decision.describe()


def fake_compat(folder: Path, version: str = CU126) -> Path:
    """The file names cuda-compat-<x>-<y> installs (empty files: nothing here loads them)."""
    folder.mkdir(parents=True)
    for name in (
        f"libcuda.so.{version}",
        f"libnvidia-ptxjitcompiler.so.{version}",
        f"libnvidia-nvvm.so.{version}",
    ):
        (folder / name).write_bytes(b"")
    (folder / "libcuda.so.1").symlink_to(f"libcuda.so.{version}")
    (folder / "libcuda.so").symlink_to("libcuda.so.1")
    return folder


def test_the_driver_file_override_replaces_both_driver_files(tmp_path):
    version = tmp_path / "version"
    version.write_text(driver_file("470.256.02"))

    assert (
        fc.read_driver_text({fc.DRIVER_VERSION_FILE_VARIABLE: str(version)}) == version.read_text()
    )
    absent = {fc.DRIVER_VERSION_FILE_VARIABLE: str(tmp_path / "absent")}
    assert fc.read_driver_text(absent) is None


def test_the_compat_version_is_read_from_the_libcuda_file_name(tmp_path):
    assert fc.compat_version(fake_compat(tmp_path / "compat")) == CU126
    assert fc.compat_version(tmp_path / "absent") is None
    (tmp_path / "empty").mkdir()
    assert fc.compat_version(tmp_path / "empty") is None


def test_the_compat_folder_goes_first_once_and_marks_the_environment():
    environ = {"LD_LIBRARY_PATH": "/opt/a:/compat:/opt/b", "HOME": "/root"}

    changed = fc.with_compat_first(environ, Path("/compat"))

    assert changed["LD_LIBRARY_PATH"] == "/compat:/opt/a:/opt/b"
    assert changed[fc.APPLIED_VARIABLE] == "/compat"
    assert changed["HOME"] == "/root"
    assert fc.with_compat_first({}, Path("/compat"))["LD_LIBRARY_PATH"] == "/compat"


def start_train(opt_ml, driver_text: str | None, compat_dir: Path, *args: str):
    """`train` as SageMaker starts it, with a fake driver file; returns (pid, exit code, stdout)."""
    env = train_env(opt_ml)
    env["LD_LIBRARY_PATH"] = "/opt/original/lib"
    env.pop(fc.APPLIED_VARIABLE, None)
    version_file = opt_ml.base.parent / "nvidia-version"
    version_file.unlink(missing_ok=True)
    if driver_text is not None:
        version_file.write_text(driver_text)
    env[fc.DRIVER_VERSION_FILE_VARIABLE] = str(version_file)
    env[fc.COMPAT_DIR_VARIABLE] = str(compat_dir)
    process = subprocess.Popen(
        [str(TRAIN), "train", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    stdout, _ = process.communicate(timeout=600)
    return process.pid, process.returncode, stdout


def test_train_restarts_itself_with_the_compat_libraries_first_keeping_its_pid(opt_ml, tmp_path):
    compat_dir = fake_compat(tmp_path / "compat")
    opt_ml.hyperparameters(TINY)

    pid, code, stdout = start_train(opt_ml, driver_file("470.256.02"), compat_dir, "--epochs")

    decision = (
        f"CUDA forward compatibility: host driver 470.256.02, compat package {CU126}: compat ("
    )
    restarted = (
        f"CUDA forward compatibility on: LD_LIBRARY_PATH={compat_dir}{os.pathsep}"
        f"/opt/original/lib (pid {pid})"
    )
    assert decision in stdout and restarted in stdout, stdout[-3000:]
    assert stdout.index(decision) < stdout.index(restarted)
    assert stdout.count("CUDA forward compatibility") == 2  # one restart, no loop
    # the trainer ran after the restart, with the same arguments
    assert code == errors.EXIT_USER_ERROR, stdout[-3000:]
    assert opt_ml.failure.read_text().startswith("ConfigError: unexpected arguments ['--epochs']")


def test_train_on_a_newer_driver_starts_once_unchanged(opt_ml, tmp_path):
    """A CPU host (no driver file) takes the same path: its decision, "cpu", is the table's
    (test_the_decision_on_each_driver_file), the absent file's reading is
    test_the_driver_file_override_replaces_both_driver_files's."""
    compat_dir = fake_compat(tmp_path / "compat")
    opt_ml.hyperparameters(TINY)

    _, code, stdout = start_train(opt_ml, driver_file("580.65.06"), compat_dir, "--epochs")

    assert f"host driver 580.65.06, compat package {CU126}: native (" in stdout, stdout[-3000:]
    assert "CUDA forward compatibility on:" not in stdout
    assert code == errors.EXIT_USER_ERROR
    assert opt_ml.failure.read_text().startswith("ConfigError: unexpected arguments")


PROGRAM = """
import ctypes, os
from trainer import forward_compat
print("started", os.getpid(), flush=True)
forward_compat.start()
ctypes.CDLL("libcuda.so.1")
loaded = [line.split()[-1] for line in open("/proc/self/maps") if "libcuda.so" in line]
print("libcuda", os.getpid(), loaded[0], flush=True)
"""


def a_real_shared_library() -> Path:
    """Any real shared object (this process's libz) stands in for the package's libcuda.so.1."""
    for line in Path("/proc/self/maps").read_text().splitlines():
        if "/libz.so" in line:
            return Path(line.split()[-1])
    pytest.skip("no libz mapped in this process")


def test_the_restarted_process_loads_libcuda_from_the_compat_folder(tmp_path):
    compat_dir = fake_compat(tmp_path / "compat")
    (compat_dir / "libcuda.so.1").unlink()
    shutil.copyfile(a_real_shared_library(), compat_dir / "libcuda.so.1")
    version = tmp_path / "version"
    version.write_text(driver_file("535.183.01"))
    env = {
        **os.environ,
        fc.DRIVER_VERSION_FILE_VARIABLE: str(version),
        fc.COMPAT_DIR_VARIABLE: str(compat_dir),
        "PYTHONPATH": str(TRAIN.parent),  # this checkout's trainer
    }
    env.pop(fc.APPLIED_VARIABLE, None)
    env.pop("LD_LIBRARY_PATH", None)

    process = subprocess.Popen(
        [sys.executable, "-c", PROGRAM],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    stdout, _ = process.communicate(timeout=60)

    assert process.returncode == 0, stdout
    # the program ran twice in one process: before and after its restart
    assert stdout.count(f"started {process.pid}") == 2, stdout
    # and the dynamic loader of the restarted process found libcuda.so.1 in the compat folder
    assert f"libcuda {process.pid} {compat_dir / 'libcuda.so.1'}" in stdout, stdout

"""CUDA forward compatibility at start-up: a newer user-mode driver for an older host driver.

The image carries NVIDIA's ``cuda-compat-<major>-<minor>`` package for the CUDA build torch was
installed with (see the Dockerfile): the ``libcuda.so`` of a newer driver branch, in
``/usr/local/cuda/compat``. On a data-center GPU whose host driver is of an older branch,
putting the folder first on ``LD_LIBRARY_PATH`` lets the CUDA build run (NVIDIA's "CUDA
Compatibility" guide, "Forward Compatibility"); on a host driver of that branch or a newer one it
must stay off (the package's libcuda would then fail with CUDA_ERROR_SYSTEM_DRIVER_MISMATCH).
AWS's Deep Learning Containers make the same comparison in their ``start_cuda_compat.sh``.

The dynamic loader reads ``LD_LIBRARY_PATH`` once, when a process starts, so :func:`start`
re-executes the same program with the new environment (``os.execve`` keeps the PID: the trainer
stays PID 1 and still receives SageMaker's SIGTERM). It must run before anything loads libcuda,
so this module imports nothing from torch or the trainer. ``decide`` is the pure decision.

Test-only overrides (never set in a job): ``DETRAIN_NVIDIA_VERSION_FILE`` replaces the driver
files (``/proc/driver/nvidia/version``, else ``/sys/module/nvidia/version``) and
``DETRAIN_CUDA_COMPAT_DIR`` replaces ``/usr/local/cuda/compat``.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from contract.startup_log import forward_compat_line

DRIVER_VERSION_FILE = Path("/proc/driver/nvidia/version")
MODULE_VERSION_FILE = Path("/sys/module/nvidia/version")  # just "535.183.01": the fallback
COMPAT_DIR = Path("/usr/local/cuda/compat")
DRIVER_VERSION_FILE_VARIABLE = "DETRAIN_NVIDIA_VERSION_FILE"
COMPAT_DIR_VARIABLE = "DETRAIN_CUDA_COMPAT_DIR"
# Set on the re-executed process: the compat folder it put first. Never re-execute twice.
APPLIED_VARIABLE = "DETRAIN_CUDA_COMPAT_APPLIED"
LIBRARY_PATH_VARIABLE = "LD_LIBRARY_PATH"

# The oldest host driver NVIDIA supports under each compat package, keyed by the driver branch the
# package is built from. Forward compatibility only covers the long-term and production branches
# still in support when the CUDA release shipped; docs/training-image.md has the table and sources.
FORWARD_COMPAT_MINIMUM = {
    560: "470.57.02",  # cuda-compat-12-6: R470 (>= 470.57.02) and later supported branches
    580: "535.54.03",  # cuda-compat-13-0: R535 and later; R470's support had ended (July 2024)
}

# "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.183.01  ..." (proprietary module) or
# "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.65.06  ..." (open module).
_DRIVER_LINE = re.compile(r"Kernel Module\s+(?:for \S+\s+)?(\d+\.\d+(?:\.\d+)?)\b")
_BARE_VERSION = re.compile(r"^\s*(\d+\.\d+(?:\.\d+)?)\s*$")
_LIBCUDA = re.compile(r"^libcuda\.so\.(\d+\.\d+(?:\.\d+)?)$")
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"  # the trainer's own log format

log = logging.getLogger("trainer.forward_compat")


@dataclass(frozen=True)
class Decision:
    """What the start-up does: ``verdict`` is one of cpu, native, compat, too old, left alone."""

    verdict: str
    host: str | None
    compat: str | None
    reason: str

    @property
    def use_compat(self) -> bool:
        return self.verdict == "compat"

    def describe(self) -> str:
        return forward_compat_line(self.host, self.compat, self.verdict, self.reason)


def driver_version(text: str) -> str | None:
    """The driver version in a driver file's text (None: not there)."""
    match = _DRIVER_LINE.search(text) or _BARE_VERSION.match(text)
    return match.group(1) if match else None


def read_driver_text(environ: Mapping[str, str]) -> str | None:
    """The text of the first driver file there is; None on a host without an NVIDIA driver."""
    override = environ.get(DRIVER_VERSION_FILE_VARIABLE)
    for path in [Path(override)] if override else [DRIVER_VERSION_FILE, MODULE_VERSION_FILE]:
        try:
            return path.read_text(errors="replace")
        except OSError:
            continue
    return None


def compat_version(compat_dir: Path) -> str | None:
    """The driver version of the compat package's ``libcuda.so.<version>``; None without one."""
    try:
        names = sorted(path.name for path in compat_dir.iterdir())
    except OSError:
        return None
    versions = [match.group(1) for name in names if (match := _LIBCUDA.match(name))]
    return max(versions, key=_as_tuple) if versions else None


def decide(driver_text: str | None, compat: str | None) -> Decision:
    """Whether to put the compat libraries first, from the driver file's text and the package's
    driver version (None: no driver file / no compat package)."""
    if driver_text is None:
        return Decision("cpu", None, compat, "no NVIDIA driver on this host: nothing to do")
    host = driver_version(driver_text)
    if host is None:
        shown = driver_text.strip()[:80]
        return Decision(
            "left alone", None, compat, f"no driver version in the driver file ({shown!r})"
        )
    if compat is None:
        return Decision("left alone", host, None, "this image carries no compat package")
    if _as_tuple(host)[0] >= _as_tuple(compat)[0]:
        # A driver of the package's own branch (or a later one) runs its CUDA release natively.
        return Decision("native", host, compat, "the host driver's branch is not older")
    minimum = FORWARD_COMPAT_MINIMUM.get(_as_tuple(compat)[0])
    if minimum is not None and _as_tuple(host) < _as_tuple(minimum):
        return Decision(
            "too old",
            host,
            compat,
            f"NVIDIA supports this package on drivers >= {minimum} only; the trainer says what "
            "to do if CUDA is unusable",
        )
    return Decision("compat", host, compat, "the host driver's branch is older")


def with_compat_first(environ: Mapping[str, str], compat_dir: Path) -> dict[str, str]:
    """``environ`` with ``compat_dir`` first on LD_LIBRARY_PATH (once) and the applied marker."""
    folder = str(compat_dir)
    rest = [
        entry
        for entry in environ.get(LIBRARY_PATH_VARIABLE, "").split(os.pathsep)
        if entry and entry != folder
    ]
    return {
        **environ,
        LIBRARY_PATH_VARIABLE: os.pathsep.join([folder, *rest]),
        APPLIED_VARIABLE: folder,
    }


def start(
    environ: Mapping[str, str] | None = None,
    argv: Sequence[str] | None = None,
    executable: str | None = None,
) -> Decision | None:
    """Log the decision and, when it is ``compat``, re-execute this program with the compat folder
    first on LD_LIBRARY_PATH (does not return then). Returns the decision, or None in a process
    that was already re-executed."""
    environ = os.environ if environ is None else environ
    _log_to_stdout()
    if APPLIED_VARIABLE in environ:
        log.info(
            "CUDA forward compatibility on: %s=%s (pid %d)",
            LIBRARY_PATH_VARIABLE,
            environ.get(LIBRARY_PATH_VARIABLE, ""),
            os.getpid(),
        )
        return None
    compat_dir = Path(environ.get(COMPAT_DIR_VARIABLE) or COMPAT_DIR)
    decision = decide(read_driver_text(environ), compat_version(compat_dir))
    if not decision.use_compat:
        log.info("%s", decision.describe())
        return decision
    log.info(
        "%s; restarting with %s first on %s", decision.describe(), compat_dir, LIBRARY_PATH_VARIABLE
    )
    _flush()
    try:
        os.execve(
            executable or sys.executable,
            list(argv if argv is not None else sys.orig_argv),
            with_compat_first(environ, compat_dir),
        )
    except OSError as error:
        log.warning("could not restart with the compat libraries (%s): going on without", error)
    return decision


def _as_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def _log_to_stdout() -> None:
    # The trainer configures logging later (main); this one logger writes the same format now.
    if not log.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter(_FORMAT))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


def _flush() -> None:
    for handler in log.handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()

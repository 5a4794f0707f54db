"""``train self-check``: the image proves itself on a CPU, offline, before it is pushed.

    docker run --rm --network none <image> self-check      (the build runs this)
    python training_image/train self-check                 (the same, from a checkout)

One line per check, ``✓ name (seconds): what it saw`` or ``✗ name: reason``, then a summary;
exit 0 only when every check passed. The checks:

1. every module of the trainer and contract packages imports, and IceVision's model type of
   each family (the wheels, the mends of trainer/icevision_patches.py, the font baked for it);
2. the CUDA forward-compatibility decision runs (on a host without a driver it says so);
3. every baked weight file is present and loads into its model (trainer/baked_weights.py);
4. for each model family: ``train train`` on a tiny generated dataset through a real temporary
   /opt/ml tree trains two steps and validates once (trainer/self_check_jobs.py);
5. the model it saved reloads through the shipped detector.py and gives the trainer's own
   detections;
6. for each model family: every backbone, from scratch, passes the preflight's training and
   validation step with 1 and with 20 classes (trainer/self_check_matrix.py);
7. a dataset with a box outside its image ends with exit 1 and a failure file that names it.

What it cannot prove is the GPU path (the host's driver, the compat libraries, CUDA kernels):
the first job on a real host does that (docs/training-image.md, "The self-check").
"""

from __future__ import annotations

import functools
import importlib
import os
import pkgutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

COMMAND = "self-check"
CHECKED_PACKAGES = ("contract", "trainer")
PASS, FAIL = "✓", "✗"


class CheckFailed(Exception):
    """A check's verdict: the message says what was wrong."""


@dataclass(frozen=True)
class Outcome:
    name: str
    passed: bool
    seconds: float
    detail: str

    def line(self) -> str:
        if self.passed:
            return f"{PASS} {self.name} ({self.seconds:.1f} s): {self.detail}"
        return f"{FAIL} {self.name}: {self.detail}"


def requested(argv: list[str]) -> bool:
    """Whether the command line asks for the self-check (``train self-check``)."""
    return argv[:1] == [COMMAND]


def run_check(name: str, check: Callable[[], str], out=None) -> Outcome:
    """Run one check, print its line, and return its outcome (never raises)."""
    out = out or sys.stdout
    started = time.monotonic()
    try:
        detail, passed = check(), True
    except CheckFailed as failure:
        detail, passed = str(failure), False
    except Exception as error:  # a bug or a broken image: the traceback's last lines say where
        lines = traceback.format_exception(error)
        detail, passed = f"{type(error).__name__}: {error}\n{''.join(lines[-4:])}", False
    outcome = Outcome(name, passed, time.monotonic() - started, detail)
    print(outcome.line(), file=out, flush=True)
    return outcome


def module_names(package: str) -> list[str]:
    """Every module of ``package``, found by walking its folder (``__main__`` runs, not imports)."""
    root = importlib.import_module(package)
    found = [package]
    for module in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
        if not module.name.endswith(".__main__"):
            found.append(module.name)
    return sorted(found)


def check_imports() -> str:
    names = [name for package in CHECKED_PACKAGES for name in module_names(package)]
    broken = []
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as error:
            broken.append(f"{name} ({type(error).__name__}: {error})")
    if broken:
        raise CheckFailed(f"{len(broken)} of {len(names)} modules do not import: {broken[0]}")
    from trainer import families

    for family in families.REGISTRY.values():
        try:
            family.model_type()
        except Exception as error:
            raise CheckFailed(
                f"IceVision's model type for {family.name} does not import: "
                f"{type(error).__name__}: {error}"
            ) from None
    return f"{len(names)} modules, IceVision's model types of {', '.join(families.REGISTRY)}"


def check_forward_compat() -> str:
    """The decision `train` takes at start-up, for this host (trainer/forward_compat.py)."""
    from trainer import forward_compat as fc

    compat_dir = Path(os.environ.get(fc.COMPAT_DIR_VARIABLE) or fc.COMPAT_DIR)
    decision = fc.decide(fc.read_driver_text(os.environ), fc.compat_version(compat_dir))
    return decision.describe()


def check_baked_weights() -> str:
    from trainer import baked_weights

    try:
        return baked_weights.check(baked_weights.manifest_path())
    except baked_weights.WeightsMissing as missing:
        raise CheckFailed(str(missing)) from None


def checks(workdir: Path) -> list[tuple[str, Callable[[], str]]]:
    """Every check after the imports, in order, with the names their lines carry."""
    from trainer import families, self_check_jobs, self_check_matrix

    listed = [
        ("forward-compat decision", check_forward_compat),
        ("baked weights load", check_baked_weights),
    ]
    for name in families.REGISTRY:
        job = self_check_jobs.FamilyJob(name, workdir / name)
        listed += [
            (f"{name} trains 2 steps and validates", job.train),
            (f"{name} reloads through detector.py", job.compare_detector),
            (
                f"{name} preflights every backbone",
                functools.partial(self_check_matrix.every_backbone, name, workdir / f"{name}-all"),
            ),
        ]
    first = next(iter(families.REGISTRY))
    bad = workdir / "bad-dataset"
    listed.append(("a bad dataset fails", lambda: self_check_jobs.bad_dataset(bad, first)))
    return listed


def main(argv: list[str]) -> int:
    """``train self-check``: run every check; 0 when all pass, 1 naming the ones that failed."""
    if argv:
        print(f"{FAIL} unexpected arguments {argv}; allowed: nothing after {COMMAND!r}", flush=True)
        return 1
    started = time.monotonic()
    print(f"{COMMAND}: proving this image on a CPU, without network", flush=True)
    with tempfile.TemporaryDirectory(prefix="detrain-self-check-") as folder:
        outcomes = [run_check("every module imports", check_imports)]
        try:
            listed = checks(Path(folder))
        except Exception:  # the registry does not import: the line above names the module
            listed = []
        outcomes += [run_check(name, check) for name, check in listed]
    failed = [o.name for o in outcomes if not o.passed]
    seconds = time.monotonic() - started
    if failed:
        print(
            f"{COMMAND} FAILED: {len(failed)} of {len(outcomes)} checks ({', '.join(failed)}) "
            f"in {seconds:.0f} s",
            flush=True,
        )
        return 1
    print(f"{COMMAND} passed: {len(outcomes)} checks in {seconds:.0f} s", flush=True)
    return 0

"""The README's main commands as a user runs them, with the real trainer
(training_image/train) on CPU: the whole flow (upload, trigger, launcher, local job, real
training) once.

Each other part is proven at its own layer, with no further whole flow:
- a failed run's reason and exit code: the trainer's failure file (trainer/test_main.py), the
  runner's reason (test_local_runner.py), the summary and exit 1 (test_run_summary.py);
- SIGTERM: the runner forwards it (test_local_runner.py), the `train` process checkpoints and
  resumes (trainer/test_main.py);
- two hosts: the runner's loopback pair (test_local_runner.py, test_rehearsal.py), the trainer's
  two-host job (trainer/test_distributed.py);
- a YOLO export with its own splits: uploaded as any folder (cli/test_operator_commands.py),
  trained with its valid/ split (trainer/test_formats_train.py);
- `first-job --rehearse`: its flow with a stand-in trainer (test_first_job_rehearsal.py), its
  report of the real trainer's log (trainer/test_finished_job.py), of a GPU host's log
  (cli/test_first_job.py).
"""

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
REPO_ROOT = Path(__file__).resolve().parents[2]
DETRAIN = [sys.executable, "-m", "detrain"]
FAST = ["--hp", "epochs=2", "--hp", "image_size=128"]


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return env | {"PYTHONUNBUFFERED": "1"}


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*DETRAIN, *args], cwd=cwd, env=_environment(), capture_output=True, text=True, timeout=600
    )


def test_rehearse_runs_the_whole_flow_and_trains_a_model(tmp_path):
    run = _run(["rehearse", "--workdir", str(tmp_path), "--images", "8", *FAST], REPO_ROOT)

    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "status    Completed (exit code 0)" in run.stdout
    assert "[metrics] epoch=2 " in run.stdout
    (job_folder,) = (tmp_path / "jobs").iterdir()
    model = job_folder / "algo-1" / "model"
    assert any(model.iterdir())
    assert list((job_folder / "algo-1" / "output" / "data").glob("*.png"))
    with tarfile.open(job_folder / "artifacts" / "model.tar.gz") as tar:
        assert sorted(tar.getnames()) == sorted(
            p.relative_to(model).as_posix() for p in model.rglob("*")
        )
    summary = json.loads((job_folder / "job.json").read_text())
    assert summary["status"] == "Completed" and summary["metrics"]["epoch"] == 2
    assert f"models/{job_folder.name}/output/model.tar.gz" in run.stdout

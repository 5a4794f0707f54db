"""The commands as a user runs them, with the real trainer (training_image/train) on CPU."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from trainer import sample_data

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


def test_rehearse_with_a_bad_dataset_shows_the_failure_reason_and_exits_non_zero(tmp_path):
    dataset = sample_data.generate(tmp_path / "broken", images=4, image_size=128).folder
    (dataset / "images" / "shapes-0002.png").unlink()

    run = _run(
        ["rehearse", "--workdir", str(tmp_path / "work"), "--dataset", str(dataset)], REPO_ROOT
    )

    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    assert "status    Failed" in run.stdout
    assert "reason    " in run.stdout
    assert "1 of 4 images named in annotations.json are missing" in run.stdout
    assert "model     " not in run.stdout


def test_local_train_forwards_sigterm_to_the_trainer_which_checkpoints(tmp_path):
    dataset = sample_data.generate(tmp_path / "shapes", images=8, image_size=128).folder
    args = ["local-train", str(dataset), "--workdir", str(tmp_path / "runs"), "--name", "stop-me"]
    hyperparameters = ["model=efficientdet", "pretrained=false", "image_size=128", "epochs=200"]
    hyperparameters += ["batch_size=4", "num_workers=0", "amp=false"]
    for pair in hyperparameters:
        args += ["--hp", pair]
    process = subprocess.Popen(
        [*DETRAIN, *args],
        cwd=tmp_path,
        env=_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    deadline = time.monotonic() + 300
    for line in process.stdout:
        lines.append(line)
        if "checkpoint saved" in line or time.monotonic() > deadline:
            break
    process.send_signal(signal.SIGTERM)
    rest, _ = process.communicate(timeout=200)
    output = "".join(lines) + rest

    assert process.returncode == 1, output[-3000:]
    assert "received SIGTERM" in output
    assert "status    Stopped" in output
    assert "TrainingStopped" in output
    store = tmp_path / "runs" / "stop-me" / "checkpoints-store"
    assert list(store.glob("*.pt")), output[-3000:]
    shutil.rmtree(tmp_path / "runs")


def test_local_train_rehearses_two_hosts_on_loopback_with_one_model(tmp_path):
    dataset = sample_data.generate(tmp_path / "shapes", images=8, image_size=128).folder
    args = ["local-train", str(dataset), "--workdir", str(tmp_path / "runs"), "--name", "two"]
    args += ["--instance-count", "2", *FAST]
    for pair in ("model=efficientdet", "pretrained=false", "batch_size=2", "num_workers=0"):
        args += ["--hp", pair]

    run = _run(args, tmp_path)

    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "world size 2, gloo" in run.stdout
    assert "status    Completed (exit code 0)" in run.stdout
    assert run.stdout.count("[metrics] epoch=2 ") == 1  # one metrics stream: rank 0's
    job = tmp_path / "runs" / "two"
    assert (job / "algo-1" / "model" / "model.pt").is_file()
    assert not any((job / "algo-2" / "model").glob("*"))


def test_rehearse_a_yolo_export_with_its_own_splits(tmp_path, monkeypatch):
    """`detrain rehearse --dataset` with a Roboflow-style YOLO folder: upload, launch, train."""
    monkeypatch.syspath_prepend(str(REPO_ROOT / "tests" / "trainer"))
    from tests.support.converters import coco_to_yolo
    from tests.support.synthetic import write_coco

    dataset = tmp_path / "pets-yolo"
    write_coco(tmp_path / "train", 6, seed=0)
    write_coco(tmp_path / "valid", 3, seed=1)
    coco_to_yolo(tmp_path / "train", dataset, "train")
    coco_to_yolo(tmp_path / "valid", dataset, "valid")

    run = _run(
        ["rehearse", "--workdir", str(tmp_path / "work"), "--dataset", str(dataset), *FAST],
        REPO_ROOT,
    )

    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "YOLO layout (train split), 6 images" in run.stdout + run.stderr
    assert "6 training images, 3 validation images" in run.stdout + run.stderr
    assert "status    Completed (exit code 0)" in run.stdout


def test_first_job_rehearsed_reports_the_cpu_path_of_the_real_trainer(tmp_path):
    args = ["first-job", "--rehearse", "--workdir", str(tmp_path), "--images", "4"]

    run = _run([*args, "--hp", "epochs=1", "--hp", "image_size=128"], REPO_ROOT)

    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = dict((line[:16].strip(), line[16:]) for line in run.stdout.splitlines()[-7:])
    assert report["job"].startswith("detrain-first-job-shapes-") and report["job"].endswith(
        ": Completed"
    )
    assert report["instance"] == "1 x ml.g5.xlarge (spot)"
    assert report["GPU"] == "none (cpu)"
    assert report["driver"] == "none"
    assert report["forward compat"].startswith("cpu (host driver none, compat package none: ")
    assert " s a training step (preflight, one step); " in report["step time"]
    assert "s an epoch (median of 1): 1 step, " in report["step time"]
    assert report["billable"].startswith("n/a (emulator; the local run took ")

"""The runner against the emulated S3, with a fake trainer that records what it was given."""

import io
import json
import os
import signal
import tarfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import boto3
import pytest

from contract.layout import Layout
from contract.names import MODELS_PREFIX
from contract.outputs import MODEL_ARCHIVE, OUTPUT_ARCHIVE, job_output_key
from detrain.local_runner import LocalRunner, docker_command, pack
from detrain.storage import Storage
from detrain.training_job import JobSpecError, from_description

DATASET = {"annotations.json": "{}", "images/a b+c.png": "png", "images/d.png": "png"}


def _tar_names(bucket: str, key: str) -> list[str]:
    body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        return sorted(tar.getnames())


def _keys(bucket: str, prefix: str) -> list[str]:
    listing = boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for o in listing.get("Contents", []))


def _record(runner: LocalRunner, job) -> dict:
    return json.loads((runner.layout(job, "algo-1").base / "fake-record.json").read_text())


@pytest.fixture
def job(create_job, put_files, bucket):
    put_files(bucket, "datasets/shapes/", DATASET)
    return from_description(create_job(bucket, HyperParameters={"behaviour": "complete"}))


def _runner(tmp_path, fake_train, **options) -> LocalRunner:
    return LocalRunner(tmp_path / "jobs", command=fake_train, out=io.StringIO(), **options)


def test_completed_job_leaves_artifacts_where_sagemaker_puts_them(
    job, bucket, tmp_path, fake_train
):
    runner = _runner(tmp_path, fake_train)

    result = runner.run(job)

    assert (result.status, result.exit_code, result.failure_reason) == ("Completed", 0, None)
    record = _record(runner, job)
    assert record["argv"] == ["train"]
    assert record["job"] == job.name
    assert record["channels"] == {"training": sorted(DATASET)}
    assert result.metrics["epoch"] == 2 and result.metrics["valid_map"] == 0.25
    assert [m["epoch"] for m in result.metrics_history] == [1, 2]
    output = f"models/{job.name}/output/"
    assert _keys(bucket, output) == [f"{output}model.tar.gz", f"{output}output.tar.gz"]
    assert _keys(bucket, output) == [  # the contract's names, where its key rule puts them
        job_output_key(MODELS_PREFIX, job.name, archive)
        for archive in (MODEL_ARCHIVE, OUTPUT_ARCHIVE)
    ]
    assert _tar_names(bucket, f"{output}model.tar.gz") == ["sub", "sub/classes.json", "weights.pt"]
    assert _tar_names(bucket, f"{output}output.tar.gz") == ["metrics.csv", "training.png"]
    assert _keys(bucket, f"checkpoints/{job.name}/") == [f"checkpoints/{job.name}/epoch-1.pt"]
    assert "fake trainer started" in (result.run_folder / "algo-1.log").read_text()
    assert json.loads((result.run_folder / "job.json").read_text())["status"] == "Completed"
    assert result.model_uri == f"s3://{bucket}/{output}model.tar.gz"


def test_failure_reason_is_the_first_1024_characters_of_the_failure_file(
    create_job, job, bucket, tmp_path, fake_train
):
    job = replace(job, hyperparameters={"behaviour": "fail"})

    result = _runner(tmp_path, fake_train).run(job)

    assert (result.status, result.exit_code) == ("Failed", 3)
    assert result.failure_reason.startswith("DatasetError: xxx")
    assert len(result.failure_reason) == 1024
    assert result.model_uri is None
    assert _keys(bucket, f"models/{job.name}/output/") == [
        f"models/{job.name}/output/output.tar.gz"
    ]


def test_existing_checkpoints_are_restored_before_start(
    job, put_files, bucket, tmp_path, fake_train
):
    put_files(bucket, f"checkpoints/{job.name}/", {"epoch-0.pt": "earlier"})
    runner = _runner(tmp_path, fake_train)

    runner.run(job)

    assert _record(runner, job)["checkpoints_at_start"] == ["epoch-0.pt"]
    # the sync mirrors the local folder: both files are there afterwards
    assert _keys(bucket, f"checkpoints/{job.name}/") == [
        f"checkpoints/{job.name}/epoch-0.pt",
        f"checkpoints/{job.name}/epoch-1.pt",
    ]


def _signal_when_ready(runner: LocalRunner, job, signum: int, ready=None) -> threading.Thread:
    marker = runner.layout(job, "algo-1").base / "ready"
    ready = ready or marker.exists

    def send():
        deadline = time.monotonic() + 30
        while not ready() and time.monotonic() < deadline:
            time.sleep(0.05)
        thread.was_ready = ready()
        os.kill(os.getpid(), signum)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def test_checkpoints_reach_s3_while_the_job_runs(job, bucket, tmp_path, fake_train):
    job = replace(job, hyperparameters={"behaviour": "wait"})
    runner = _runner(tmp_path, fake_train, sync_seconds=0.2)
    synced = f"checkpoints/{job.name}/epoch-0.pt"
    sender = _signal_when_ready(
        runner, job, signal.SIGTERM, ready=lambda: synced in _keys(bucket, "")
    )

    result = runner.run(job)

    assert sender.was_ready  # the running job's checkpoint was in S3 before it was stopped
    assert result.status == "Stopped"
    # deleting a local checkpoint deletes it in S3, as SageMaker's sync does
    assert _keys(bucket, f"checkpoints/{job.name}/") == [f"checkpoints/{job.name}/last.pt"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_is_forwarded_as_sigterm_and_the_trainer_checkpoints(
    job, bucket, tmp_path, fake_train, signum
):
    job = replace(job, hyperparameters={"behaviour": "wait"})
    runner = _runner(tmp_path, fake_train)
    _signal_when_ready(runner, job, signum)

    result = runner.run(job)

    assert _record(runner, job)["signals"] == ["SIGTERM"]
    assert (result.status, result.exit_code) == ("Stopped", 0)
    assert _keys(bucket, f"checkpoints/{job.name}/") == [f"checkpoints/{job.name}/last.pt"]
    assert _tar_names(bucket, f"models/{job.name}/output/model.tar.gz") == ["weights.pt"]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored


def test_a_trainer_that_ignores_sigterm_is_killed_after_the_grace_period(job, tmp_path, fake_train):
    job = replace(job, hyperparameters={"behaviour": "ignore"})
    runner = _runner(tmp_path, fake_train, grace_seconds=0.5)
    _signal_when_ready(runner, job, signal.SIGTERM)

    result = runner.run(job)

    assert (result.status, result.exit_code) == ("Stopped", -signal.SIGKILL)


def test_max_runtime_stops_the_job(job, tmp_path, fake_train):
    job = replace(job, hyperparameters={"behaviour": "wait"}, max_runtime_seconds=1)
    runner = _runner(tmp_path, fake_train)

    result = runner.run(job)

    assert result.status == "Stopped"
    assert _record(runner, job)["signals"] == ["SIGTERM"]


def test_sharded_channel_on_two_hosts_splits_the_files(job, tmp_path, fake_train):
    channel = replace(job.channels[0], distribution="ShardedByS3Key")
    job = replace(job, channels=(channel,), instance_count=2)
    runner = _runner(tmp_path, fake_train)

    layouts = [runner.prepare(job, host) for host in job.hosts]

    files = [sorted(p.name for p in layout.channel("training").rglob("*.*")) for layout in layouts]
    assert files == [["annotations.json", "d.png"], ["a b+c.png"]]


def test_two_hosts_run_side_by_side_and_meet_on_loopback(job, bucket, tmp_path, fake_train):
    job = replace(job, instance_count=2)
    out = io.StringIO()
    runner = LocalRunner(tmp_path / "jobs", command=fake_train, out=out)

    result = runner.run(job)

    records = [
        json.loads((runner.layout(job, host).base / "fake-record.json").read_text())
        for host in job.hosts
    ]
    assert [r["host"] for r in records] == ["algo-1", "algo-2"]
    assert records[0]["master"] == records[1]["master"]
    assert records[0]["master"][0] == "127.0.0.1" and int(records[0]["master"][1]) > 0
    assert result.status == "Completed"
    assert "[algo-2] fake trainer started" in out.getvalue()
    assert [m["epoch"] for m in result.metrics_history] == [1, 2]  # the first host's metrics


def test_one_host_gets_no_loopback_overrides(job, tmp_path, fake_train):
    runner = _runner(tmp_path, fake_train)

    runner.run(job)

    assert _record(runner, job)["master"] == [None, None]


def test_docker_runs_one_host_only(job, tmp_path):
    runner = LocalRunner(tmp_path, docker_image="img:1", out=io.StringIO())

    with pytest.raises(JobSpecError, match="instance count 2 with Docker is not supported"):
        runner.run(replace(job, instance_count=2))


def test_docker_command_mounts_the_tree_and_passes_train(job, tmp_path):
    layout = Layout(tmp_path / "algo-1")

    command = docker_command(replace(job, network_isolation=True), layout, "algo-1", "img:1", "all")

    assert command[:2] == ["docker", "run"]
    assert command[-2:] == ["img:1", "train"]
    assert f"{tmp_path / 'algo-1'}:/opt/ml" in command
    assert f"TRAINING_JOB_NAME={job.name}" in command
    assert "DETRAIN_TEST=yes" in command
    assert command[command.index("--network") + 1] == "none"
    assert command[command.index("--gpus") + 1] == "all"


def test_local_folder_storage_round_trip(tmp_path):
    source = tmp_path / "source"
    (source / "images").mkdir(parents=True)
    (source / "images" / "x.png").write_text("x")
    storage = Storage()

    assert storage.list(source.as_uri()) == ["images/x.png"]
    storage.download(source.as_uri(), ["images/x.png"], tmp_path / "copy")
    assert (tmp_path / "copy" / "images" / "x.png").read_text() == "x"
    archive = pack(source, tmp_path / "out" / "a.tar.gz")
    storage.upload(archive, (tmp_path / "store" / "a.tar.gz").as_uri())
    assert (tmp_path / "store" / "a.tar.gz").is_file()
    assert not list(Path(tmp_path / "out").glob("*.partial"))


def test_checkpoint_sync_skips_a_file_the_trainer_removes_while_it_runs(tmp_path, monkeypatch):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    (folder / "checkpoint-e0001.pt").write_bytes(b"old")
    (folder / "checkpoint-e0002.pt").write_bytes(b"new")
    remote = tmp_path / "remote"
    remote.mkdir()
    (remote / "checkpoint-e0001.pt").write_bytes(b"old")  # synced on an earlier tick
    storage = Storage()
    upload = storage.upload

    def trainer_rotates_first(path: Path, uri: str) -> None:
        if path.name == "checkpoint-e0001.pt":
            path.unlink()  # the trainer keeps the newest only: gone after the listing
        upload(path, uri)

    monkeypatch.setattr(storage, "upload", trainer_rotates_first)

    synced = storage.sync_up(folder, remote.as_uri())

    assert synced == 1
    assert sorted(p.name for p in remote.iterdir()) == ["checkpoint-e0002.pt"]

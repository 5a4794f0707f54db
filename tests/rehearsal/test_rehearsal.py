"""The rehearsal's flow (emulator, sample data, upload, S3 event, launcher, runner)."""

import io
import json
import os

import pytest

from detrain import rehearsal


def test_flow_hands_the_upload_event_to_the_launcher_and_runs_its_job(tmp_path, fake_train):
    out = io.StringIO()

    result = rehearsal.rehearse(tmp_path, images=6, out=out, command=fake_train)

    assert result.status == "Completed"
    assert result.job_name.startswith("detrain-sample-shapes-")
    record = json.loads((result.run_folder / "algo-1" / "fake-record.json").read_text())
    channel = record["channels"]["training"]
    assert "annotations.json" in channel and "_launch.json" in channel
    assert len([f for f in channel if f.startswith("images/")]) == 6
    hyperparameters = json.loads(
        (result.run_folder / "algo-1" / "input" / "config" / "hyperparameters.json").read_text()
    )
    assert hyperparameters["model"] == "efficientdet"
    assert hyperparameters["pretrained"] == "false"
    (exchange,) = (tmp_path / "events").iterdir()
    delivered = json.loads(exchange.read_text())
    assert delivered["event"]["Records"][0]["s3"]["object"]["key"].endswith("_launch.json")
    assert delivered["response"]["results"][0]["status"] == "launched"
    log = out.getvalue()
    for step in range(1, 6):
        assert f"==> [{step}/5]" in log
    assert f"models/{result.job_name}/output/model.tar.gz" in log
    assert "datasets/sample-shapes/_launch.json -> launcher: launched detrain-sample-shapes-" in log
    assert "AWS_ENDPOINT_URL" not in os.environ  # the emulator's settings do not leak


def test_the_folder_keeps_only_the_latest_run(tmp_path, fake_train):
    first = rehearsal.rehearse(tmp_path, images=4, out=io.StringIO(), command=fake_train)
    second = rehearsal.rehearse(tmp_path, images=4, out=io.StringIO(), command=fake_train)

    assert [p.name for p in (tmp_path / "jobs").iterdir()] == [second.job_name]
    assert not first.run_folder.exists() or first.run_folder == second.run_folder


def test_hyperparameter_overrides_reach_the_job(tmp_path, fake_train):
    result = rehearsal.rehearse(
        tmp_path, images=4, hyperparameters={"epochs": "1"}, out=io.StringIO(), command=fake_train
    )

    config = result.run_folder / "algo-1" / "input" / "config" / "hyperparameters.json"
    assert json.loads(config.read_text())["epochs"] == "1"


def test_two_instances_requested_in_the_trigger_run_as_two_local_hosts(tmp_path, fake_train):
    result = rehearsal.rehearse(
        tmp_path, images=4, instance_count=2, out=io.StringIO(), command=fake_train
    )

    assert result.status == "Completed"
    assert sorted(p.name for p in result.run_folder.glob("algo-*") if p.is_dir()) == [
        "algo-1",
        "algo-2",
    ]


def test_bad_overrides_stop_the_rehearsal_before_anything_is_launched(tmp_path, fake_train):
    with pytest.raises(rehearsal.RehearsalError, match=r"'image_size' = 100 must be a multiple"):
        rehearsal.rehearse(
            tmp_path,
            images=4,
            hyperparameters={"image_size": "100"},
            out=io.StringIO(),
            command=fake_train,
        )


def test_a_launcher_refusal_is_reported_with_its_reason():
    refused = {"results": [{"status": "refused", "reason": "image x is not built yet"}]}

    with pytest.raises(rehearsal.RehearsalError, match="created no job: image x is not built yet"):
        rehearsal.launched_job(refused)
    assert rehearsal.launched_job({"status": "launched", "job_name": "j"}) == "j"


def test_an_empty_dataset_folder_stops_at_the_upload(tmp_path, fake_train):
    (tmp_path / "empty").mkdir()

    with pytest.raises(rehearsal.RehearsalError, match="holds no files"):
        rehearsal.rehearse(
            tmp_path / "work", dataset=tmp_path / "empty", out=io.StringIO(), command=fake_train
        )

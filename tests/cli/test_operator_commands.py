"""The operator CLI, run as child processes against the moto server."""

from __future__ import annotations

import io
import json
import os
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import boto3
import pytest

from detrain import cli, job_commands
from detrain.upload import UploadError, upload_dataset
from infra.settings import from_context, load_context
from launch_training.handler import handler
from tests.support.cli_world import (
    BUCKET,
    LAUNCHER,
    CliWorld,
    deploy_launcher,
    launched_job,
    model_archive,
)

CDK_SETTINGS = from_context(load_context(Path(__file__).resolve().parents[2] / "cdk.json"))

COMMANDS = ("upload", "launch", "list", "describe", "stop", "follow", "fetch")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    with pytest.raises(SystemExit) as exit_:
        cli.main([command, "--help"])
    assert exit_.value.code == 0


# ---- upload ---------------------------------------------------------------------------


def test_upload_syncs_the_folder_then_writes_the_trigger_last(stack, dataset_folder, launcher_env):
    done = stack.detrain(
        "upload", "fridge", str(dataset_folder), "--hp", "epochs=3", "--hp", "model=efficientdet"
    )

    assert done.returncode == 0, done.stderr
    assert "6 files uploaded, 0 unchanged" in done.stdout
    assert "upload fridge" in done.stderr  # the progress bar
    assert stack.object_keys() == sorted(
        ["datasets/fridge/_launch.json"]
        + [f"datasets/fridge/images/{i}.jpg" for i in range(3)]
        + [f"datasets/fridge/annotations/{i}.xml" for i in range(3)]
    )
    created = stack.created_events()
    assert len(created) == 7
    assert created[-1]["Records"][0]["s3"]["object"]["key"] == "datasets%2Ffridge%2F_launch.json"
    body = (
        boto3.client("s3")
        .get_object(Bucket=BUCKET, Key="datasets/fridge/_launch.json")["Body"]
        .read()
    )
    assert json.loads(body) == {"hyperparameters": {"epochs": 3, "model": "efficientdet"}}
    [result] = handler(created[-1], None)["results"]
    assert result["status"] == "launched"
    assert result["hyperparameters"]["epochs"] == "3"


def test_upload_again_skips_unchanged_files_and_delete_removes_stale_ones(stack, dataset_folder):
    stack.detrain("upload", "fridge", str(dataset_folder), "--no-progress")
    (dataset_folder / "images" / "0.jpg").unlink()
    (dataset_folder / "images" / "1.jpg").write_bytes(b"changed")

    again = stack.detrain(
        "upload", "fridge", str(dataset_folder), "--no-progress", "--delete", "--no-trigger"
    )

    assert again.returncode == 0, again.stderr
    assert "1 files uploaded, 4 unchanged, 1 deleted" in again.stdout
    assert "datasets/fridge/images/0.jpg" not in stack.object_keys()
    assert "datasets/fridge/_launch.json" in stack.object_keys()  # the earlier trigger stays


def test_upload_refuses_bad_overrides_before_writing_anything(stack, dataset_folder):
    done = stack.detrain("upload", "fridge", str(dataset_folder), "--hp", "epochs=0")

    assert done.returncode == 2
    assert "'epochs' = 0 is out of range; allowed: 1 to 1000" in done.stderr
    assert stack.object_keys() == []


def test_upload_refuses_a_bad_job_name_before_writing_anything(stack, dataset_folder):
    done = stack.detrain("upload", "fridge", str(dataset_folder), "--job-name", "exp_7")

    assert done.returncode == 2
    assert "'job_name' = 'exp_7' is not a valid training job name; allowed:" in done.stderr
    assert stack.object_keys() == []


def test_upload_refuses_an_empty_folder(aws, tmp_path):
    (tmp_path / ".hidden").write_text("x")

    with pytest.raises(UploadError, match="holds no files to upload"):
        upload_dataset("any-bucket", "fridge", tmp_path)


def test_upload_refuses_a_bad_name(stack, dataset_folder):
    done = stack.detrain("upload", "a/b", str(dataset_folder))

    assert done.returncode == 2
    assert "dataset name 'a/b' is not allowed" in done.stderr


def test_upload_with_an_explicit_bucket_needs_no_stack(aws, dataset_folder):
    boto3.client("s3").create_bucket(Bucket="my-bucket")

    done = CliWorld("my-bucket", dict(os.environ), "").detrain(
        "upload", "fridge", str(dataset_folder), "--bucket", "my-bucket", "--no-progress"
    )

    assert done.returncode == 0, done.stderr
    assert "s3://my-bucket/datasets/fridge/: 6 files uploaded" in done.stdout


def test_a_missing_stack_is_named(aws, dataset_folder):
    done = CliWorld("", dict(os.environ), "").detrain("upload", "fridge", str(dataset_folder))

    assert done.returncode == 2
    assert "stack 'Detrain' is not deployed in us-east-1; run `npx cdk deploy` first" in done.stderr


def test_a_missing_stack_names_the_options_that_replace_it(aws):
    done = CliWorld("", dict(os.environ), "").detrain("launch", "fridge")

    assert done.returncode == 2
    assert "stack 'Detrain' is not deployed in us-east-1" in done.stderr
    assert "name the resources (--function)" in done.stderr


def test_an_unknown_profile_is_named_with_the_configured_ones(aws, tmp_path):
    config = tmp_path / "config"
    config.write_text("[default]\nregion = us-east-1\n[profile work]\nregion = eu-west-1\n")
    env = {**os.environ, "AWS_CONFIG_FILE": str(config)}

    done = CliWorld("", env, "").detrain("list", "--profile", "wrok")

    assert done.returncode == 2
    assert "AWS profile 'wrok' is not configured; configured: default, work" in done.stderr


def test_an_unreachable_endpoint_is_one_line_not_a_traceback(aws):
    env = {**os.environ, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}

    done = CliWorld("", env, "").detrain("list")

    assert done.returncode == 2
    assert "Could not connect to the endpoint URL" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_list_max_must_be_positive(value):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["list", "--max", value])
    assert exit_.value.code == 2


def test_missing_credentials_are_named(stack, dataset_folder, tmp_path):
    env = {
        k: v
        for k, v in stack.env.items()
        if not k.startswith("AWS_") or k in ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION")
    }
    env.update(
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        AWS_EC2_METADATA_DISABLED="true",
    )

    done = stack.detrain("list", env=env)

    assert done.returncode == 2
    assert "no AWS credentials found" in done.stderr


def test_upload_dataset_is_a_plain_function_for_the_rehearsal(aws, shared_datasets):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="rehearsal")

    result = upload_dataset(
        "rehearsal",
        "fridge",
        shared_datasets / "fridge-voc",
        {"hyperparameters": {"epochs": 1}},
        progress=False,
    )

    local = [
        p
        for p in (shared_datasets / "fridge-voc").rglob("*")
        if p.is_file() and not p.name.startswith(".")
    ]
    assert result.uploaded == len(local) and result.trigger_key == "datasets/fridge/_launch.json"
    with pytest.raises(UploadError, match="is not a directory"):
        upload_dataset("rehearsal", "fridge", shared_datasets / "fridge-voc" / "missing-folder")


def test_the_documented_replay_of_the_s3_sample_finds_the_uploads_job(
    stack, dataset_folder, launcher_env
):
    """docs/launching.md: upload with --job-name, then invoke events/s3-put-trigger.json."""
    done = stack.detrain(
        "upload", "fridge v2", str(dataset_folder), "--job-name", "fridge-v2-demo", "--no-progress"
    )
    assert done.returncode == 0, done.stderr
    [by_upload] = handler(stack.created_events()[-1], None)["results"]
    sample = (Path(__file__).resolve().parents[2] / "events" / "s3-put-trigger.json").read_text()

    [replayed] = handler(json.loads(sample.replace(BUCKET, stack.bucket)), None)["results"]

    assert (by_upload["status"], by_upload["job_name"]) == ("launched", "detrain-fridge-v2-demo")
    assert (replayed["status"], replayed["job_name"]) == (
        "already_launched",
        "detrain-fridge-v2-demo",
    )


# ---- launch ---------------------------------------------------------------------------


def test_print_request_is_a_console_event_the_launcher_accepts(stack, dataset_folder, launcher_env):
    stack.detrain("upload", "fridge", str(dataset_folder), "--no-trigger", "--no-progress")

    printed = stack.detrain(
        "launch",
        "fridge",
        "--print-request",
        "--hp",
        "epochs=2",
        "--input-mode",
        "FastFile",
        "--no-spot",
    )

    assert printed.returncode == 0, printed.stderr
    request = json.loads(printed.stdout)
    assert request == {
        "dataset": "fridge",
        "hyperparameters": {"epochs": 2},
        "spot": False,
        "input_mode": "FastFile",
    }
    result = handler(request, None)
    assert result["status"] == "launched"
    assert (result["spot"], result["input_mode"]) == (False, "FastFile")


def test_launch_asks_for_two_instances_with_sharded_data(stack, dataset_folder, launcher_env):
    stack.detrain("upload", "fridge", str(dataset_folder), "--no-trigger", "--no-progress")

    printed = stack.detrain(
        "launch",
        "fridge",
        "--print-request",
        "--instance-count",
        "2",
        "--s3-distribution",
        "ShardedByS3Key",
    )

    assert printed.returncode == 0, printed.stderr
    request = json.loads(printed.stdout)
    assert (request["instance_count"], request["s3_distribution"]) == (2, "ShardedByS3Key")
    result = handler(request, None)
    assert (result["status"], result.get("instance_count")) == ("launched", 2), result


@pytest.fixture
def simple_lambda(aws: str) -> Iterator[callable]:
    """moto's Lambda without Docker: invoke answers the results queued here, runs no code."""

    def post(path: str, body: dict) -> None:
        data = json.dumps(body).encode()
        urllib.request.urlopen(
            urllib.request.Request(f"{aws}{path}", data=data, method="POST")
        ).close()

    post("/moto-api/config", {"lambda": {"use_docker": False}})
    deploy_launcher()
    try:
        yield lambda result: post(
            "/moto-api/static/lambda-simple/response", {"results": [json.dumps(result)]}
        )
    finally:
        post("/moto-api/config", {"lambda": {"use_docker": True}})


def test_launch_invokes_the_function_and_prints_its_result(
    stack, dataset_folder, launcher_env, simple_lambda
):
    stack.detrain("upload", "fridge", str(dataset_folder), "--no-trigger", "--no-progress")
    answer = handler(json.loads(stack.detrain("launch", "fridge", "--print-request").stdout), None)
    simple_lambda(answer)

    done = stack.detrain("launch", "fridge")

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["job_name"] == answer["job_name"]


def test_launch_exits_1_with_the_reason_when_the_function_refuses(
    stack, launcher_env, simple_lambda
):
    answer = handler({"dataset": "never-uploaded"}, None)
    assert answer["status"] == "refused"
    simple_lambda(answer)

    done = stack.detrain("launch", "never-uploaded")

    assert done.returncode == 1
    assert f"refused: {answer['reason']}" in done.stderr


def test_launch_checks_the_deployed_allow_list_not_cdk_json(stack, tmp_path):
    """cdk.json allows ml.g5.xlarge and 2 instances; the deployed launcher does not: the CLI
    reads the deployment's list (the function's environment), wherever it runs from."""
    deploy_launcher(
        replace(
            LAUNCHER,
            allowed_instance_types=("ml.g5.2xlarge",),
            default_instance_type="ml.g5.2xlarge",
            max_instance_count=3,
        )
    )
    assert "ml.g5.xlarge" in CDK_SETTINGS.instance_types and CDK_SETTINGS.max_instance_count == 2

    wrong_type = stack.detrain("launch", "fridge", "--instance-type", "ml.g5.xlarge", cwd=tmp_path)
    too_many = stack.detrain("launch", "fridge", "--instance-count", "4", cwd=tmp_path)

    assert wrong_type.returncode == 1, wrong_type.stderr
    assert (
        "refused: 'instance_type' = 'ml.g5.xlarge' is not allowed by this deployment; "
        "allowed: ml.g5.2xlarge" in wrong_type.stderr
    )
    assert too_many.returncode == 1, too_many.stderr
    assert "'instance_count' = 4 is not allowed by this deployment; allowed: 1 to 3" in (
        too_many.stderr
    )


def test_launch_reports_a_function_error():
    with pytest.raises(
        cli.CliError, match=r"the launcher failed \(Unhandled\): DATA_BUCKET is not set"
    ):
        job_commands.print_launch_result(b'{"errorMessage": "DATA_BUCKET is not set"}', "Unhandled")


# ---- list, describe, stop, follow, fetch ----------------------------------------------


def test_list_and_describe(stack, dataset_folder, launcher_env):
    job = launched_job(stack, dataset_folder, launcher_env)

    listed = stack.detrain("list")
    described = stack.detrain("describe", job)
    raw = stack.detrain("describe", job, "--json")

    assert job in listed.stdout and "Completed" in listed.stdout
    assert f"job:        {job}" in described.stdout
    assert f"training = s3://{BUCKET}/datasets/fridge/" in described.stdout
    assert "1 x ml.g5.xlarge (spot)" in described.stdout
    assert json.loads(raw.stdout)["TrainingJobName"] == job


def test_stop_refuses_a_job_that_has_ended(stack, dataset_folder, launcher_env):
    job = launched_job(stack, dataset_folder, launcher_env)

    done = stack.detrain("stop", job)

    assert done.returncode == 2
    assert f"job '{job}' is Completed; only an InProgress job can be stopped" in done.stderr


@pytest.mark.parametrize("status", ["Completed", "Failed", "Stopped", "Stopping"])
def test_only_in_progress_jobs_are_stoppable(status):
    job_commands.check_stoppable("j", "InProgress")
    with pytest.raises(cli.CliError, match=f"is {status}"):
        job_commands.check_stoppable("j", status)


def test_follow_prints_logs_and_the_final_status(stack, dataset_folder, launcher_env):
    job = launched_job(stack, dataset_folder, launcher_env)
    logs = boto3.client("logs")
    logs.create_log_group(logGroupName="/aws/sagemaker/TrainingJobs")
    logs.create_log_stream(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=f"{job}/algo-1-1700000000"
    )
    logs.put_log_events(
        logGroupName="/aws/sagemaker/TrainingJobs",
        logStreamName=f"{job}/algo-1-1700000000",
        logEvents=[
            {"timestamp": int(time.time() * 1000), "message": "[metrics] epoch=1 train_loss=0.5"}
        ],
    )

    done = stack.detrain("follow", job, "--poll", "1")

    assert done.returncode == 0, done.stderr
    assert "[metrics] epoch=1 train_loss=0.5" in done.stderr
    assert "status:     Completed" in done.stdout


def test_fetch_downloads_and_unpacks_the_model(stack, dataset_folder, launcher_env, tmp_path):
    job = launched_job(stack, dataset_folder, launcher_env)
    boto3.client("s3").put_object(
        Bucket=BUCKET,
        Key=f"models/{job}/output/model.tar.gz",
        Body=model_archive({"model.pth": b"weights", "class_map.json": b"{}"}),
    )

    done = stack.detrain("fetch", job, "--output", str(tmp_path / "out"), "--no-progress")

    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / job / "model" / "model.pth").read_bytes() == b"weights"
    assert (tmp_path / "out" / job / "model.tar.gz").is_file()


def test_fetch_refuses_an_archive_that_escapes_its_folder(
    stack, dataset_folder, launcher_env, tmp_path
):
    job = launched_job(stack, dataset_folder, launcher_env)
    boto3.client("s3").put_object(
        Bucket=BUCKET,
        Key=f"models/{job}/output/model.tar.gz",
        Body=model_archive({"../evil.sh": b"x"}),
    )

    done = stack.detrain("fetch", job, "--output", str(tmp_path / "out"), "--no-progress")

    assert done.returncode == 2
    assert "cannot unpack" in done.stderr
    assert not (tmp_path / "out" / "evil.sh").exists()


def test_fetch_names_a_missing_model(stack, dataset_folder, launcher_env, tmp_path):
    job = launched_job(stack, dataset_folder, launcher_env)

    done = stack.detrain("fetch", job, "--output", str(tmp_path), "--no-progress")

    assert done.returncode == 2
    assert f"model s3://{BUCKET}/models/{job}/output/model.tar.gz cannot be read" in done.stderr


# ---- upload --ground-truth ---------------------------------------------------------------


def _labelling_job_output(s3) -> str:
    """A Ground Truth bounding-box job's output: two images in their own bucket, a manifest."""
    from PIL import Image

    s3.create_bucket(Bucket="labelling")
    lines = []
    for i, name in enumerate(("cat.jpg", "dog.jpg")):
        buffer = io.BytesIO()
        Image.new("RGB", (64, 48), (i * 90, 120, 200)).save(buffer, "JPEG")
        s3.put_object(Bucket="labelling", Key=f"raw/{name}", Body=buffer.getvalue())
        lines.append(
            {
                "source-ref": f"s3://labelling/raw/{name}",
                "pets": {
                    "image_size": [{"width": 64, "height": 48, "depth": 3}],
                    "annotations": [
                        {"class_id": i, "left": 4, "top": 5, "width": 20, "height": 16}
                    ],
                },
                "pets-metadata": {
                    "class-map": {"0": "cat", "1": "dog"},
                    "type": "groundtruth/object-detection",
                    "human-annotated": "yes",
                },
            }
        )
    body = "".join(json.dumps(line) + "\n" for line in lines)
    s3.put_object(Bucket="labelling", Key="jobs/pets/manifests/output/output.manifest", Body=body)
    return "s3://labelling/jobs/pets/manifests/output/output.manifest"


def test_upload_ground_truth_copies_the_images_then_the_manifest_then_the_trigger(stack, tmp_path):
    s3 = boto3.client("s3")
    manifest = _labelling_job_output(s3)

    done = stack.detrain("upload", "pets", "--ground-truth", manifest, "--hp", "epochs=3")

    assert done.returncode == 0, done.stderr
    assert "2 images copied, 0 unchanged" in done.stdout
    assert stack.object_keys() == [
        "datasets/pets/_launch.json",
        "datasets/pets/output.manifest",
        "datasets/pets/raw/cat.jpg",
        "datasets/pets/raw/dog.jpg",
    ]
    created = [r["Records"][0]["s3"]["object"]["key"] for r in stack.created_events()]
    assert created[-1] == "datasets%2Fpets%2F_launch.json"  # the trigger comes last
    # The prefix is a channel the trainer reads on its own (what SageMaker copies to the job).
    channel = tmp_path / "channel"
    for key in stack.object_keys():
        target = channel / key.removeprefix("datasets/pets/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    from trainer import tables

    table = tables.load(channel)
    assert len(table) == 2 and table.class_names == ("cat", "dog")

    again = stack.detrain("upload", "pets", "--ground-truth", manifest, "--no-trigger")
    assert again.returncode == 0, again.stderr
    assert "0 images copied, 2 unchanged" in again.stdout


def test_upload_ground_truth_refuses_a_manifest_without_s3_images(stack, tmp_path):
    manifest = tmp_path / "output.manifest"
    manifest.write_text(json.dumps({"source-ref": "/home/me/cat.jpg"}) + "\n")

    done = stack.detrain("upload", "pets", "--ground-truth", str(manifest))

    assert done.returncode == 2
    assert "output.manifest line 1: 'source-ref' = '/home/me/cat.jpg' is not an S3 object URI" in (
        done.stderr
    )
    assert stack.object_keys() == []


def test_upload_needs_a_folder_or_a_manifest(stack, dataset_folder):
    both = stack.detrain("upload", "pets", str(dataset_folder), "--ground-truth", "x.manifest")
    neither = stack.detrain("upload", "pets")
    for done in (both, neither):
        assert done.returncode == 2
        assert "give a dataset FOLDER or --ground-truth MANIFEST (one of the two)" in done.stderr

"""deploy, endpoints, undeploy, invoke and transform, run as a user runs them (a child process)
against the moto server. moto says yes to what AWS may refuse: refusals are tested with AWS's
error shapes in test_endpoint_refusals.py. InvokeEndpoint goes to the real model server
(`train serve` on a tiny trained model) through detrain/local_endpoint.py's front door, which
plays SageMaker's runtime, since moto's reaches no container."""

from __future__ import annotations

import json
import os

import boto3
import pytest
import requests
from PIL import Image

from contract.names import TAG_ENDPOINT, TAG_JOB
from detrain.local_endpoint import FrontDoor
from tests.support.cli_world import BUCKET, IMAGE_URI, CliWorld
from tests.support.serving_world import (
    ENDPOINT_TYPES,
    JOB,
    MODEL_DATA,
    MODEL_ROLE,
    completed_job,
    deploy_serving_stack,
)


@pytest.fixture
def world(aws) -> CliWorld:
    deploy_serving_stack()
    completed_job()
    return CliWorld(bucket=BUCKET, env={**os.environ, "COLUMNS": "100"}, queue_url="")


def _tags(arn: str) -> dict[str, str]:
    found = boto3.client("sagemaker").list_tags(ResourceArn=arn)["Tags"]
    return {t["Key"]: t["Value"] for t in found}


def test_deploy_makes_a_serverless_endpoint_of_the_jobs_model(world):
    done = world.detrain("deploy", JOB, "--poll", "0")

    assert done.returncode == 0, done.stderr
    sagemaker = boto3.client("sagemaker")
    model = sagemaker.describe_model(ModelName=JOB)
    assert model["PrimaryContainer"]["Image"] == IMAGE_URI
    assert model["PrimaryContainer"]["ModelDataUrl"] == MODEL_DATA
    assert model["ExecutionRoleArn"] == MODEL_ROLE
    (variant,) = sagemaker.describe_endpoint_config(EndpointConfigName=JOB)["ProductionVariants"]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 4096, "MaxConcurrency": 5}
    assert "InstanceType" not in variant
    endpoint = sagemaker.describe_endpoint(EndpointName=JOB)
    assert endpoint["EndpointStatus"] == "InService"
    assert _tags(endpoint["EndpointArn"])[TAG_JOB] == JOB
    assert "nothing while idle" in done.stdout
    assert f"endpoint {JOB} is InService" in done.stdout


def test_a_second_deploy_reuses_what_the_first_made(world):
    first = world.detrain("deploy", JOB, "--poll", "0")
    again = world.detrain("deploy", JOB, "--poll", "0")

    assert first.returncode == 0 and again.returncode == 0, again.stderr
    assert f"model {JOB} exists with this spec: reused" in again.stdout
    assert f"endpoint {JOB} exists with this spec: reused" in again.stdout
    assert len(boto3.client("sagemaker").list_endpoints()["Endpoints"]) == 1


def test_a_deploy_with_another_spec_under_the_same_name_is_refused(world):
    world.detrain("deploy", JOB, "--poll", "0")

    other = world.detrain("deploy", JOB, "--memory", "2048", "--poll", "0")

    assert other.returncode == 2
    assert other.stderr.startswith(
        f"detrain deploy: endpoint configuration {JOB!r} exists with another spec "
        "(ProductionVariants.0.ServerlessConfig is {'MemorySizeInMB': 4096, 'MaxConcurrency': 5}"
        ", not {'MemorySizeInMB': 2048, 'MaxConcurrency': 5}); `detrain undeploy"
    )


def test_a_real_time_endpoint_shows_its_price_and_needs_a_yes(world):
    unconfirmed = world.detrain("deploy", JOB, "--instance-type", "ml.g4dn.xlarge")

    assert unconfirmed.returncode == 2
    assert "ml.g4dn.xlarge x 1: 0.74 USD/hour (~537 USD/month)" in unconfirmed.stdout
    assert "pass --yes" in unconfirmed.stderr
    assert boto3.client("sagemaker").list_models()["Models"] == []

    confirmed = world.detrain(
        "deploy", JOB, "--instance-type", "ml.g4dn.xlarge", "--name", "gpu", "--yes", "--poll", "0"
    )
    assert confirmed.returncode == 0, confirmed.stderr
    config = boto3.client("sagemaker").describe_endpoint_config(EndpointConfigName="detrain-gpu")
    (variant,) = config["ProductionVariants"]
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("ml.g4dn.xlarge", 1)


@pytest.mark.parametrize(
    ("option", "value", "allowed"),
    [
        ("--instance-type", "ml.p4d.24xlarge", f"allowed: {ENDPOINT_TYPES.replace(',', ', ')}"),
        ("--memory", "3000", "allowed (MB): 1024, 2048, 3072, 4096, 5120, 6144"),
        ("--max-concurrency", "500", "allowed: 1 to 200"),
    ],
)
def test_a_value_out_of_bounds_is_refused_naming_what_is_allowed(world, option, value, allowed):
    done = world.detrain("deploy", JOB, option, value, "--yes")

    assert done.returncode == 2
    assert f"{option} {value} is not allowed" in done.stderr and allowed in done.stderr
    assert boto3.client("sagemaker").list_models()["Models"] == []


def test_only_a_completed_jobs_model_is_deployed(world):
    done = world.detrain("deploy", "detrain-no-such-job")

    assert done.returncode == 2
    assert done.stderr == (  # neither a training job nor a tuning job of that name
        "detrain deploy: no training job or tuning job is named 'detrain-no-such-job'\n"
    )


def test_endpoints_lists_age_and_cost_class(world):
    world.detrain("deploy", JOB, "--poll", "0")
    world.detrain("deploy", JOB, "--name", "gpu", "--instance-type", "ml.g4dn.xlarge", "--yes")

    listed = world.detrain("endpoints")

    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["ENDPOINT", "STATUS", "AGE", "COST"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert "serverless 4096 MB (idle: 0 USD)" in rows[JOB]
    assert "1 x ml.g4dn.xlarge (0.74 USD/hour)" in rows["detrain-gpu"]
    assert "0 min" in rows[JOB] and "InService" in rows[JOB]


def test_undeploy_deletes_the_endpoint_and_only_what_deploy_made_for_it(world):
    world.detrain("deploy", JOB, "--poll", "0")
    sagemaker = boto3.client("sagemaker")
    arn = sagemaker.describe_model(ModelName=JOB)["ModelArn"]
    sagemaker.delete_tags(ResourceArn=arn, TagKeys=[TAG_ENDPOINT])  # as if made by someone else

    done = world.detrain("undeploy", JOB)

    assert done.returncode == 0, done.stderr
    assert sagemaker.list_endpoints()["Endpoints"] == []
    assert sagemaker.list_endpoint_configs()["EndpointConfigs"] == []
    assert [m["ModelName"] for m in sagemaker.list_models()["Models"]] == [JOB]
    assert "billing stops" in done.stdout


def _scene(path, size=(96, 80)) -> None:
    image = Image.new("RGB", size, "white")
    image.paste((200, 30, 30), (20, 15, 70, 60))
    image.save(path)


def _invoke_through(world, served_model, endpoint, *args):
    """`detrain invoke` with sagemaker-runtime pointed at the front door, JOB routed to the
    real server."""
    with FrontDoor() as door:
        door.route(JOB, served_model.url)
        env = {**world.env, "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": door.url}
        return world.detrain("invoke", endpoint, *args, "--no-progress", env=env)


def test_invoke_draws_the_servers_boxes_and_writes_json_lines(world, served_model, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    _scene(images / "a.jpg")
    _scene(images / "b.png", size=(64, 120))
    out = tmp_path / "out"

    done = _invoke_through(
        world, served_model, JOB, str(images), "--out", str(out), "--threshold", "0",
        "--max-detections", "2",
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in (out / "detections.jsonl").read_text().splitlines()]
    assert [line["drawn"] for line in lines] == ["00000-a.jpg", "00001-b.jpg"]
    sent = (("a.jpg", "image/jpeg"), ("b.png", "image/png"))
    for line, (name, kind) in zip(lines, sent, strict=True):
        direct = requests.post(
            served_model.url + "/invocations",
            data=(images / name).read_bytes(),
            headers={"Content-Type": kind},
            params={"threshold": "0", "max_detections": "2"},
            timeout=60,
        ).json()
        assert line["detections"] == direct["detections"]  # CustomAttributes passed through
        assert len(line["detections"]) == 2  # threshold 0: the untrained model finds many
    assert Image.open(out / "00001-b.jpg").size == (64, 120)
    assert "2 images, 4 detections" in done.stdout


def test_invoke_names_the_servers_refusal_and_an_unknown_endpoint(world, served_model, tmp_path):
    image = tmp_path / "a.jpg"
    _scene(image)

    refused = _invoke_through(
        world, served_model, JOB, str(image), "--out", str(tmp_path), "--max-detections", "5000"
    )
    unknown = _invoke_through(
        world, served_model, "detrain-nobody", str(image), "--out", str(tmp_path)
    )

    assert refused.returncode == 2
    assert "ModelError" in refused.stderr and "Received client error (400)" in refused.stderr
    assert "max_detections = '5000' is not allowed; allowed: a whole number" in refused.stderr
    assert "`detrain serve MODEL` runs the same server" in refused.stderr
    assert unknown.returncode == 2
    assert "Endpoint detrain-nobody not found" in unknown.stderr
    assert "`detrain endpoints` lists them" in unknown.stderr


def test_transform_runs_a_batch_over_a_prefix_into_the_jobs_transform_folder(world):
    source = f"s3://{BUCKET}/datasets/fridge/images/"

    done = world.detrain("transform", JOB, source, "--poll", "0")

    assert done.returncode == 0, done.stderr
    sagemaker = boto3.client("sagemaker")
    (summary,) = sagemaker.list_transform_jobs()["TransformJobSummaries"]
    job = sagemaker.describe_transform_job(TransformJobName=summary["TransformJobName"])
    assert job["TransformJobName"].startswith(f"{JOB}-")
    assert job["ModelName"] == f"{JOB}-batch"
    assert job["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] == source
    assert job["TransformInput"]["SplitType"] == "None"
    assert job["TransformInput"]["ContentType"] == "application/x-image"
    assert job["TransformOutput"]["S3OutputPath"] == (
        f"s3://{BUCKET}/models/{JOB}/transform/{job['TransformJobName']}/"
    )
    assert job["TransformResources"]["InstanceType"] == "ml.m5.xlarge"
    assert "completed" in done.stdout


@pytest.mark.parametrize(
    ("args", "refusal"),
    [
        (["s3://elsewhere/images/"], "is not readable by the model role"),
        ([f"s3://{BUCKET}/datasets/x/", "--out", f"s3://{BUCKET}/out/"], "is not writable"),
        ([f"s3://{BUCKET}/datasets/x/", "--instance-type", "ml.p4d.24xlarge"], "not allowed"),
    ],
)
def test_transform_refuses_what_the_model_role_or_the_allow_list_would_not_do(world, args, refusal):
    done = world.detrain("transform", JOB, *args)

    assert done.returncode == 2
    assert refusal in done.stderr
    assert boto3.client("sagemaker").list_transform_jobs()["TransformJobSummaries"] == []

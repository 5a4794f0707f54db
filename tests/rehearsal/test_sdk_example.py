"""docs/examples/sdk_train.py: the SageMaker Python SDK v3 (sagemaker-train) against the emulator.

Its requests are captured as botocore sends them (after the example's own parameter hooks) and
checked against SageMaker's service model; the training job it creates is then run by the local
runner with the real trainer, which reads the SDK's hyperparameter encoding.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
from pathlib import Path

import boto3
import pytest

from contract.hyperparameters import parse as parse_hyperparameters
from contract.metrics import metric_definitions
from contract.names import STACK_NAME, Output, checkpoints_uri
from contract.outputs import MAX_RUNTIME_VARIABLE
from contract.tuning import objective_direction, tuning_job_config
from contract.tuning import parse as parse_tuning
from detrain import rehearsal
from detrain.local_runner import LocalRunner
from detrain.training_job import from_description
from detrain.upload import upload_dataset
from tests.support.service_model import problems  # the launcher tests' checker
from trainer import sample_data

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = REPO_ROOT / "docs" / "examples" / "sdk_train.py"
DATASET = "shapes"
TELEMETRY_OFF = 'SchemaVersion: "1.0"\nSageMaker:\n  PythonSDK:\n    Modules:\n'
TELEMETRY_OFF += "      TelemetryOptOut: true\n"
TINY = ["model=efficientdet", "backbone=tf_lite0", "pretrained=false", "epochs=1"]
TINY += ["batch_size=4", "image_size=128", "num_workers=0", "valid_fraction=0.25", "amp=false"]


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = sys.modules[name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def example():
    return _load("sdk_train", EXAMPLE)


@pytest.fixture
def stack(aws: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The stack's resources in the emulator, and a CloudFormation stack with their outputs."""
    config = tmp_path / "sagemaker-config.yaml"  # no telemetry calls from a test
    config.write_text(TELEMETRY_OFF)
    monkeypatch.setenv("SAGEMAKER_USER_CONFIG_OVERRIDE", str(config))
    created = rehearsal.create_stack()
    _deploy_outputs(
        {
            Output.IMAGE_URI: created.image_uri,
            Output.TRAINING_ROLE_ARN: created.role_arn,
            Output.BUCKET_NAME: created.bucket,
            Output.KMS_KEY_ARN: created.key_arn,
        }
    )
    return created


def _deploy_outputs(outputs: dict[str, str], name: str = STACK_NAME) -> None:
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    boto3.client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(template))


class Requests:
    """A boto3 session whose SageMaker requests are kept as sent (after every other hook)."""

    def __init__(self):
        self.session = boto3.Session()
        self.sent: dict[str, dict] = {}
        self.session.events.register_last("before-parameter-build.sagemaker", self._keep)

    def _keep(self, params: dict, model, **_) -> None:
        self.sent[model.name] = copy.deepcopy(params)


def _hyperparameter_flags(pairs: list[str]) -> list[str]:
    return [flag for pair in pairs for flag in ("--hp", pair)]


@pytest.mark.slow
def test_the_sdk_job_runs_on_the_image_contract_to_completion(example, stack, tmp_path):
    folder = sample_data.generate(tmp_path / "shapes", images=8, image_size=128).folder
    upload_dataset(stack.bucket, DATASET, folder, trigger=False, progress=False)
    requests = Requests()

    name = example.main([DATASET, *_hyperparameter_flags(TINY)], session=requests.session)

    sent = requests.sent["CreateTrainingJob"]
    assert problems("CreateTrainingJob", sent) == []
    assert sent["AlgorithmSpecification"]["MetricDefinitions"] == metric_definitions()
    assert sent["AlgorithmSpecification"]["TrainingImage"] == stack.image_uri
    assert sent["RoleArn"] == stack.role_arn
    assert sent["EnableNetworkIsolation"] and sent["EnableInterContainerTrafficEncryption"]
    assert "VpcConfig" not in sent
    stopping = sent["StoppingCondition"]
    assert sent["EnableManagedSpotTraining"]
    assert stopping["MaxWaitTimeInSeconds"] == 2 * stopping["MaxRuntimeInSeconds"]
    assert sent["Environment"] == {MAX_RUNTIME_VARIABLE: str(stopping["MaxRuntimeInSeconds"])}
    assert sent["OutputDataConfig"]["KmsKeyId"] == stack.key_arn
    assert sent["CheckpointConfig"]["S3Uri"] == checkpoints_uri(stack.bucket, name)
    # Strings as they are, the rest JSON-encoded: the trainer reads both.
    assert sent["HyperParameters"] == {
        "model": "efficientdet",
        "backbone": "tf_lite0",
        "pretrained": "false",
        "epochs": "1",
        "batch_size": "4",
        "image_size": "128",
        "num_workers": "0",
        "valid_fraction": "0.25",
        "amp": "false",
    }

    description = boto3.client("sagemaker").describe_training_job(TrainingJobName=name)
    result = LocalRunner(tmp_path / "jobs").run(from_description(description))

    assert result.status == "Completed", result.failure_reason
    assert result.metrics["epoch"] == 1
    config = json.loads((result.model_dir / "config.json").read_text())
    assert (config["model"], config["backbone"], config["image_size"]) == (
        "efficientdet",
        "tf_lite0",
        128,
    )
    s3 = boto3.client("s3")
    s3.head_object(Bucket=stack.bucket, Key=f"models/{name}/output/model.tar.gz")
    checkpoints = s3.list_objects_v2(Bucket=stack.bucket, Prefix=f"checkpoints/{name}/")
    assert checkpoints.get("KeyCount", 0) > 0


TUNE = ["--tune", "--range", "learning_rate=1e-4:1e-2:log", "--range", "image_size=128,256"]
TUNE += ["--max-jobs", "4", "--max-parallel-jobs", "2"]
STATIC = ["model=efficientdet", "pretrained=false", "epochs=2"]


def test_the_sdk_tuning_job_is_valid_and_keeps_the_launchers_settings(example, stack):
    requests = Requests()

    name = example.main([DATASET, *_hyperparameter_flags(STATIC), *TUNE], session=requests.session)

    sent = requests.sent["CreateHyperParameterTuningJob"]
    assert problems("CreateHyperParameterTuningJob", sent) == []
    assert sent["HyperParameterTuningJobName"] == name
    config = sent["HyperParameterTuningJobConfig"]
    objective = config["HyperParameterTuningJobObjective"]
    assert objective["MetricName"] in {d["Name"] for d in metric_definitions()}
    assert objective["Type"] == objective_direction(objective["MetricName"]) == "Maximize"
    static = {"model": "efficientdet", "pretrained": False, "epochs": 2}
    ranges = {
        "learning_rate": {"min": 1e-4, "max": 1e-2, "scaling": "Logarithmic"},
        "image_size": {"values": [128, 256]},
    }
    body = {"ranges": ranges, "max_jobs": 4, "max_parallel_jobs": 2}
    contract = tuning_job_config(parse_tuning(body, static, max_jobs_cap=8, max_parallel_cap=2), 2)
    assert config["ParameterRanges"] == contract["ParameterRanges"]
    assert config["ResourceLimits"] == contract["ResourceLimits"]
    trial = sent["TrainingJobDefinition"]
    assert trial["AlgorithmSpecification"]["MetricDefinitions"] == metric_definitions()
    assert trial["EnableNetworkIsolation"] and trial["EnableInterContainerTrafficEncryption"]
    assert "CheckpointConfig" not in trial  # trials would share (and resume) one prefix
    stopping = trial["StoppingCondition"]
    assert trial["EnableManagedSpotTraining"]
    assert stopping["MaxWaitTimeInSeconds"] == 2 * stopping["MaxRuntimeInSeconds"]
    assert parse_hyperparameters(trial["StaticHyperParameters"]).epochs == 2
    described = boto3.client("sagemaker").describe_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name
    )
    assert described["HyperParameterTuningJobName"] == name


def test_the_sdk_tuner_alone_drops_network_isolation_from_its_trials(example, stack):
    """Why the example adds it: v3's tuner builds its trials without the trainer's Networking."""
    requests = Requests()
    outputs = example.stack_outputs(requests.session)
    trainer = example.model_trainer(
        outputs, DATASET, {"epochs": 2}, session=requests.session, checkpoints=False
    )
    requests.session.events.unregister(
        "before-parameter-build.sagemaker.CreateHyperParameterTuningJob",
        unique_id="detrain-tuning",
    )
    body = {"ranges": {"image_size": {"values": [384, 512]}}, "max_jobs": 2}
    tuning = parse_tuning(body, {"epochs": 2}, max_jobs_cap=8, max_parallel_cap=2)

    example.hyperparameter_tuner(trainer, tuning, DATASET).tune(
        inputs=[example.dataset_input(outputs, DATASET)], wait=False
    )

    trial = requests.sent["CreateHyperParameterTuningJob"]["TrainingJobDefinition"]
    assert "EnableNetworkIsolation" not in trial


def test_a_stack_without_the_key_output_is_named(example, aws):
    _deploy_outputs({Output.BUCKET_NAME: "b", Output.IMAGE_URI: "i", Output.TRAINING_ROLE_ARN: "r"})

    with pytest.raises(SystemExit, match=Output.KMS_KEY_ARN):
        example.stack_outputs(boto3.Session())

"""The serving tests' world: a stack whose outputs include the model role and the endpoint
allow-list, and a Completed training job in the moto server. InvokeEndpoint is answered by
the real model server (the `served_model` fixture of tests/cli/conftest.py) behind
detrain/local_endpoint.py's front door, since moto's reaches no container."""

from __future__ import annotations

import json

import boto3

from contract.names import STACK_NAME, Output, models_uri
from tests.support.cli_world import ACCOUNT, BUCKET, IMAGE_URI

JOB = "detrain-fridge-20261206-101010"
MODEL_ROLE = f"arn:aws:iam::{ACCOUNT}:role/detrain-models"
ENDPOINT_TYPES = "ml.m5.xlarge,ml.g4dn.xlarge"  # moto 5.2 refuses ml.g5 endpoints
MODEL_DATA = f"{models_uri(BUCKET)}{JOB}/output/model.tar.gz"
SERVING_TEMPLATE = {
    "Resources": {"DataBucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": BUCKET}}},
    "Outputs": {
        Output.BUCKET_NAME: {"Value": {"Ref": "DataBucket"}},
        Output.IMAGE_URI: {"Value": IMAGE_URI},
        Output.MODEL_ROLE_ARN: {"Value": MODEL_ROLE},
        Output.ENDPOINT_INSTANCE_TYPES: {"Value": ENDPOINT_TYPES},
    },
}


def deploy_serving_stack() -> None:
    boto3.client("cloudformation").create_stack(
        StackName=STACK_NAME, TemplateBody=json.dumps(SERVING_TEMPLATE)
    )


def completed_job(name: str = JOB) -> None:
    """A training job as moto keeps it: Completed at once, its model at the usual key."""
    boto3.client("sagemaker").create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": IMAGE_URI, "TrainingInputMode": "File"},
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/detrain-training",
        OutputDataConfig={"S3OutputPath": models_uri(BUCKET)},
        ResourceConfig={"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 50},
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
    )

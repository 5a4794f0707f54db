#!/usr/bin/env python3
"""The CDK app: the Detrain stack from the cdk.json settings, checked by cdk-nag on every synth."""

import os
import sys

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks, NIST80053R5Checks

from contract.names import STACK_NAME
from infra.settings import SettingsError, from_context, setting_keys
from infra.stack import DetrainStack

app = cdk.App()
try:
    settings = from_context({key: app.node.try_get_context(key) for key in setting_keys()})
except SettingsError as error:
    sys.exit(f"detrain: bad setting: {error}")
DetrainStack(
    app,
    STACK_NAME,
    settings=settings,
    description="detrain: train IceVision object detectors on SageMaker",
    env=cdk.Environment(
        account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION")
    ),
)
cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(), NIST80053R5Checks())
app.synth()

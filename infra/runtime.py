"""Choices shared by every function and log group of the stack."""

from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs

# The newest Python runtime aws-cdk-lib 2.275 offers (cdk-nag AwsSolutions-L1 checks it).
LAMBDA_RUNTIME = lambda_.Runtime.PYTHON_3_14
LOG_RETENTION = logs.RetentionDays.ONE_YEAR

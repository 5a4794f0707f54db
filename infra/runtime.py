"""Choices shared by every function, log group and retained resource of the stack."""

from aws_cdk import RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs

# The newest Python runtime aws-cdk-lib 2.275 offers (cdk-nag AwsSolutions-L1 checks it).
LAMBDA_RUNTIME = lambda_.Runtime.PYTHON_3_14
LOG_RETENTION = logs.RetentionDays.ONE_YEAR


def removal_policy(retain: bool) -> RemovalPolicy:
    """``detrain:removalPolicy`` as CloudFormation applies it to data, keys, images and logs.

    Retain is CloudFormation's ``RetainExceptOnCreate``: kept on update and on stack deletion,
    but deleted when the deploy that created it rolls back, so a failed first deploy leaves
    no fixed-name bucket or repository behind to make the next deploy fail with "already
    exists" (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-deletionpolicy.html).
    """
    return RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE if retain else RemovalPolicy.DESTROY

"""Acknowledging cdk-nag findings: one exact finding id per call, on the narrowest construct.

cdk-nag 3 renders intrinsic values in finding ids (``<AWS::Region>``, a resource's
``<LogicalId.Arn>``) and literal values as they are; ``placeholder`` builds the same text
from a stack, so ids hold whether the stack is environment-agnostic or not.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Stack, Token, Validations
from constructs import IConstruct


def acknowledge(construct: IConstruct, finding: str, reason: str) -> None:
    """Accept one finding (e.g. ``AwsSolutions-IAM5[Action::s3:List*]``) under ``construct``."""
    Validations.of(construct).acknowledge(Acknowledgment(id=finding, reason=reason))


def placeholder(stack: Stack, name: str) -> str:
    """How cdk-nag writes the stack's account, region or partition in a finding id."""
    value = {"account": stack.account, "region": stack.region, "partition": stack.partition}[name]
    if not Token.is_unresolved(value):
        return value
    return {
        "account": "<AWS::AccountId>",
        "region": "<AWS::Region>",
        "partition": "<AWS::Partition>",
    }[name]


def logical_arn(construct: IConstruct) -> str:
    """How cdk-nag writes ``Fn::GetAtt [<resource>, Arn]`` of a construct's CFN resource."""
    resource = construct.node.default_child or construct
    return f"<{Stack.of(construct).get_logical_id(resource)}.Arn>"


def region_arn(stack: Stack, service: str, resource: str) -> str:
    """How cdk-nag writes ``arn:<partition>:<service>:<region>:<account>:<resource>`` here."""
    partition, region, account = (
        placeholder(stack, name) for name in ("partition", "region", "account")
    )
    return f"arn:{partition}:{service}:{region}:{account}:{resource}"


INLINE_POLICY_REASON = (
    "Each inline policy belongs to exactly one role of this stack and is created, scoped "
    "and deleted with it; a managed policy would be a second, reusable copy of it."
)
# Functions that run only while CloudFormation deploys (custom-resource handlers).
DEPLOY_TIME_FUNCTION_REASONS = {
    "NIST.800.53.R5-LambdaConcurrency": (
        "Runs only during a deploy, once per image build; reserving concurrency would take "
        "it from the account's pool for nothing."
    ),
    "NIST.800.53.R5-LambdaDLQ": (
        "Invoked synchronously by the custom-resource framework, which reports any failure "
        "to CloudFormation; a DLQ only receives asynchronous invocations."
    ),
    "NIST.800.53.R5-LambdaInsideVPC": (
        "Calls only AWS APIs (CodeBuild, ECR, Lambda, Step Functions); the stack has no VPC, "
        "and one with endpoints would add cost without protecting any data path."
    ),
}

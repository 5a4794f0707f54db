"""Build-on-deploy: a custom resource that starts the image build when a tag is new and
waits for it (handlers in build_on_deploy/handler.py, run by a custom_resources.Provider).

Its properties hold the training image's tag, the build args it hashes and the CPU serving
image's tag (image_tag.py), so an unchanged training_image/ and CUDA flavour mean no update and
no build; the deploy goes on once both images are in the repository; a failed build
fails the deploy with its failed phase and the last lines of its log. The handlers may touch
the build's log group (created by the start handler if absent, read by the waiter), which the
stack does not own (image_build.py says why), and no other.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from aws_cdk import ArnFormat, CustomResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import custom_resources as cr
from constructs import Construct

from infra.checkov_skips import skip_check, skip_deploy_time_function
from infra.nag import (
    DEPLOY_TIME_FUNCTION_REASONS,
    INLINE_POLICY_REASON,
    acknowledge,
    logical_arn,
    region_arn,
)
from infra.runtime import LAMBDA_RUNTIME, LOG_RETENTION

HANDLER_DIR = Path(__file__).parent / "build_on_deploy"
POLL_SECONDS = 30


class BuildTrigger(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        project: codebuild.IProject,
        repository: ecr.IRepository,
        image_tag: str,
        serving_image_tag: str,
        build_args: Mapping[str, str],
        build_log_group_name: str,
        build_log_retention_days: int,
        timeout: Duration,
        key: kms.IKey,
        removal: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.build_log_group_name = build_log_group_name
        self.log_group = logs.LogGroup(
            self, "Logs", retention=LOG_RETENTION, encryption_key=key, removal_policy=removal
        )
        self.handlers: dict[str, lambda_.Function] = {}
        for name, handler, action in (
            ("StartBuild", "handler.on_event", "codebuild:StartBuild"),
            ("WaitForBuild", "handler.is_complete", "codebuild:BatchGetBuilds"),
        ):
            role = self._lambda_role(f"{name}Role")
            role.add_to_policy(
                iam.PolicyStatement(actions=[action], resources=[project.project_arn])
            )
            self.handlers[name] = lambda_.Function(
                self,
                name,
                runtime=LAMBDA_RUNTIME,
                code=lambda_.Code.from_asset(str(HANDLER_DIR), exclude=["__pycache__", "*.pyc"]),
                handler=handler,
                role=role,
                log_group=self.log_group,
                timeout=Duration.minutes(1),
            )
        repository.grant(self.handlers["StartBuild"], "ecr:DescribeImages")
        build_logs = self._build_log_group_arn()
        self.handlers["StartBuild"].add_to_role_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:PutRetentionPolicy"],
                resources=[build_logs, f"{build_logs}:*"],
            )
        )
        self.handlers["WaitForBuild"].add_to_role_policy(
            iam.PolicyStatement(actions=["logs:GetLogEvents"], resources=[f"{build_logs}:*"])
        )
        self.provider = cr.Provider(
            self,
            "Provider",
            on_event_handler=self.handlers["StartBuild"],
            is_complete_handler=self.handlers["WaitForBuild"],
            framework_on_event_role=self._lambda_role("FrameworkOnEventRole"),
            framework_complete_and_timeout_role=self._lambda_role("FrameworkWaitRole"),
            query_interval=Duration.seconds(POLL_SECONDS),
            total_timeout=timeout,
            log_group=self.log_group,
            provider_function_env_encryption=key,
            disable_waiter_state_machine_logging=False,
            waiter_state_machine_log_options=cr.LogOptions(
                destination=self.log_group, include_execution_data=False, level=sfn.LogLevel.ALL
            ),
        )
        self.resource = CustomResource(
            self,
            "Build",
            service_token=self.provider.service_token,
            resource_type="Custom::TrainingImageBuild",
            service_timeout=Duration.minutes(60),
            properties={
                "ProjectName": project.project_name,
                "RepositoryName": repository.repository_name,
                "ImageTag": image_tag,
                "ImageUri": repository.repository_uri_for_tag(image_tag),
                "ServingImageTag": serving_image_tag,
                "ServingImageUri": repository.repository_uri_for_tag(serving_image_tag),
                "BuildArgs": dict(build_args),
                "LogGroupName": build_log_group_name,
                "LogRetentionDays": build_log_retention_days,
            },
        )
        # The build starts as soon as this resource is created: its role's policy (source
        # asset, ECR push, logs, the key) must exist by then, not be created alongside.
        if project.role is not None:
            self.resource.node.add_dependency(project.role)
        self.image_uri = self.resource.get_att_string("ImageUri")
        self.serving_image_uri = self.resource.get_att_string("ServingImageUri")
        self._acknowledge()

    def _build_log_group_arn(self) -> str:
        return Stack.of(self).format_arn(
            service="logs",
            resource="log-group",
            resource_name=self.build_log_group_name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )

    def _lambda_role(self, construct_id: str) -> iam.Role:
        """A function role that writes only to this construct's log group (no managed policy)."""
        role = iam.Role(self, construct_id, assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        self.log_group.grant_write(role)
        return role

    def _acknowledge(self) -> None:
        provider = self.provider.node
        waiter = provider.find_child("waiter-state-machine")
        framework = [
            provider.find_child(f"framework-{name}")
            for name in ("onEvent", "isComplete", "onTimeout")
        ]
        roles = [child for child in self.node.children if isinstance(child, iam.Role)]
        invoke_reason = (
            "lambda:InvokeFunction on the versions of this construct's own handler "
            "(the Provider framework's grant); no other function."
        )
        build_logs = region_arn(Stack.of(self), "logs", f"log-group:{self.build_log_group_name}:*")
        for role_id, reason in (
            ("StartBuildRole", "creates the build's log group if absent and sets its retention"),
            ("WaitForBuildRole", "reads the failed build's last log lines for the deploy error"),
        ):
            acknowledge(
                self.node.find_child(role_id),
                f"AwsSolutions-IAM5[Resource::{build_logs}]",
                f"The image build's own log group and its streams only: the handler {reason}.",
            )
        for role in (*roles, waiter.node.find_child("Role")):
            acknowledge(role, "NIST.800.53.R5-IAMNoInlinePolicy", INLINE_POLICY_REASON)
        for role_id in ("FrameworkOnEventRole", "FrameworkWaitRole"):
            for handler in self.handlers.values():
                acknowledge(
                    self.node.find_child(role_id),
                    f"AwsSolutions-IAM5[Resource::{logical_arn(handler)}:*]",
                    invoke_reason,
                )
        for function in framework[1:]:
            acknowledge(
                waiter, f"AwsSolutions-IAM5[Resource::{logical_arn(function)}:*]", invoke_reason
            )
        acknowledge(
            waiter,
            "AwsSolutions-IAM5[Resource::*]",
            "Step Functions log delivery (logs:CreateLogDelivery and related) has no "
            "resource-level permissions; CDK's waiter needs them to log to our log group.",
        )
        acknowledge(
            waiter,
            "AwsSolutions-SF2",
            "The waiter only polls one build every 30 s during a deploy; its executions are "
            "logged (level ALL) to the encrypted log group, X-Ray would add nothing.",
        )
        for function in (*self.handlers.values(), *framework):
            for finding, reason in DEPLOY_TIME_FUNCTION_REASONS.items():
                acknowledge(function, finding, reason)
            skip_deploy_time_function(function)
        skip_check(
            waiter.node.find_child("Role").node.find_child("DefaultPolicy"),
            "CKV_AWS_111",
            "Step Functions log delivery (logs:CreateLogDelivery and related) has no "
            "resource-level permissions; CDK's waiter needs them to log to our log group.",
        )

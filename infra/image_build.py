"""The image build: a CodeBuild project over training_image/ (an S3 asset) that pushes the
training image ``<repository>:<IMAGE_TAG>`` and the CPU serving image for serverless endpoints
``<repository>:<SERVING_IMAGE_TAG>``, started on deploy by BuildTrigger when a tag is new.

The tag hashes training_image/ and the build args (image_tag.py); the serving tag is the tag
with ``-cpu``. The buildspec is training_image/buildspec.yml and reads REPOSITORY_URI, IMAGE_TAG,
SERVING_IMAGE_TAG and each build arg (such as TORCH_INDEX_URL), all but the first set per build
by BuildTrigger. The project may also describe the repository's images: the buildspec pushes
only the tags it lacks (tags are immutable; a retried build may find one of the pair there).

The build's log outlives a failed first deploy. The project is named ``<stack>-training-image``
and logs to CodeBuild's own group for that name, ``/aws/codebuild/<stack>-training-image``,
which the stack does not own: the build-on-deploy handler creates it if absent (setting its
retention, BUILD_LOG_RETENTION_DAYS) just before StartBuild, and nothing deletes it. So
- a rollback, even of the deploy that created the stack, leaves the log readable (the stack
  owns no resource to delete, and the group is not encrypted with the platform key, which that
  rollback schedules for deletion: CloudWatch Logs encrypts it with its own key);
- the next deploy finds the group there and writes to it (a retained group owned by the stack,
  with a fixed name, would fail that deploy with "already exists");
- the log group expires its events by itself after the retention; a destroyed stack leaves the
  empty group behind (`aws logs delete-log-group` removes it).
The deploy's failure reason also carries the failed phase and the log's last lines.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from aws_cdk import Duration, Stack
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from infra.build_trigger import BuildTrigger
from infra.image_tag import IGNORED_DIRECTORIES, IGNORED_SUFFIXES, serving_image_tag
from infra.nag import INLINE_POLICY_REASON, acknowledge, region_arn
from infra.runtime import removal_policy

REPOSITORY_URI_VARIABLE = "REPOSITORY_URI"
BUILDSPEC = "buildspec.yml"
# CloudFormation waits at most one hour for a custom resource (ServiceTimeout <= 3600 s):
# the build's own timeouts (queued, then running) leave the deploy time to report a build
# that timed out, so no build outlives the deploy that waits for it.
QUEUED_MINUTES = 5
BUILD_MINUTES = 50
WAIT_MINUTES = 58
BUILD_LOG_RETENTION_DAYS = 90  # one of CloudWatch Logs' allowed retention values


def build_project_name(stack_name: str) -> str:
    return f"{stack_name}-training-image"


def build_log_group_name(stack_name: str) -> str:
    """CodeBuild's default group of the project: what the console's build page links to."""
    return f"/aws/codebuild/{build_project_name(stack_name)}"


class ImageBuild(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        context_dir: Path,
        image_tag: str,
        build_args: Mapping[str, str],
        repository: ecr.IRepository,
        key: kms.IKey,
        retain: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        removal = removal_policy(retain)
        self.context = s3_assets.Asset(
            self,
            "Context",
            path=str(context_dir),
            exclude=[*IGNORED_DIRECTORIES, *(f"*{suffix}" for suffix in IGNORED_SUFFIXES)],
        )
        stack_name = Stack.of(self).stack_name
        self.log_group_name = build_log_group_name(stack_name)
        # Not a resource of the stack (see the module's docstring): a reference by name.
        self.log_group = logs.LogGroup.from_log_group_name(self, "Logs", self.log_group_name)
        self.project = codebuild.Project(
            self,
            "Project",
            project_name=build_project_name(stack_name),
            description=(
                "Builds the detrain training image and its CPU serving image from "
                "training_image/ and pushes both"
            ),
            source=codebuild.Source.s3(bucket=self.context.bucket, path=self.context.s3_object_key),
            build_spec=codebuild.BuildSpec.from_source_filename(BUILDSPEC),
            environment=codebuild.BuildEnvironment(
                build_image=codebuild.LinuxBuildImage.STANDARD_7_0,
                compute_type=codebuild.ComputeType.MEDIUM,
                # Runs the Docker daemon that builds the image; the build runs only our
                # buildspec over our own source asset (cdk-nag 3 has no rule for it; see
                # docs/security.md).
                privileged=True,
            ),
            environment_variables={
                REPOSITORY_URI_VARIABLE: codebuild.BuildEnvironmentVariable(
                    value=repository.repository_uri
                )
            },
            encryption_key=key,
            grant_report_group_permissions=False,
            logging=codebuild.LoggingOptions(
                cloud_watch=codebuild.CloudWatchLoggingOptions(log_group=self.log_group)
            ),
            queued_timeout=Duration.minutes(QUEUED_MINUTES),
            timeout=Duration.minutes(BUILD_MINUTES),
        )
        repository.grant_pull_push(self.project)
        repository.grant(self.project, "ecr:DescribeImages")
        self.trigger = BuildTrigger(
            self,
            "OnDeploy",
            project=self.project,
            repository=repository,
            image_tag=image_tag,
            serving_image_tag=serving_image_tag(image_tag),
            build_args=build_args,
            build_log_group_name=self.log_group_name,
            build_log_retention_days=BUILD_LOG_RETENTION_DAYS,
            timeout=Duration.minutes(WAIT_MINUTES),
            key=key,
            removal=removal,
        )
        self.image_uri = self.trigger.image_uri
        self.serving_image_uri = self.trigger.serving_image_uri
        self._acknowledge()

    def _acknowledge(self) -> None:
        stack = Stack.of(self)
        role = self.project.role
        source_read = (
            "CDK's read grant on the build's source: the one asset object of training_image/ "
            "in the CDK bootstrap bucket."
        )
        for action in ("s3:GetBucket*", "s3:GetObject*", "s3:List*"):
            acknowledge(role, f"AwsSolutions-IAM5[Action::{action}]", source_read)
        project_id = stack.get_logical_id(self.project.node.default_child)
        for group in (self.log_group_name, f"/aws/codebuild/<{project_id}>"):
            acknowledge(
                role,
                f"AwsSolutions-IAM5[Resource::{region_arn(stack, 'logs', f'log-group:{group}:*')}]",
                "The streams of this project's own log group only, CodeBuild's default "
                "/aws/codebuild/<project> (CDK's grant names it by the project, ours by name).",
            )
        for action in ("kms:GenerateDataKey*", "kms:ReEncrypt*"):
            acknowledge(
                role,
                f"AwsSolutions-IAM5[Action::{action}]",
                "CDK's encrypt/decrypt grant for build artifacts; its only resource "
                "is the platform key.",
            )
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "ecr:GetAuthorizationToken has no resource-level permissions; pushes and pulls "
            "are limited to this repository.",
        )
        acknowledge(
            role,
            "NIST.800.53.R5-IAMNoInlinePolicy",
            INLINE_POLICY_REASON,
        )

"""The Detrain stack: composes the constructs, wires them, and exports what the CLI reads."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from contract.names import JOB_NAME_PREFIX, Output
from infra.data_bucket import DataBucket
from infra.image_build import ImageBuild
from infra.image_repository import ImageRepository
from infra.image_tag import image_tag
from infra.launcher import Launcher
from infra.model_role import ModelRole
from infra.notifications import Notifications
from infra.platform_key import PlatformKey
from infra.settings import Settings, launcher_environment
from infra.training_role import TrainingRole

REPO_ROOT = Path(__file__).resolve().parents[1]
IMAGE_CONTEXT = REPO_ROOT / "training_image"
LAMBDA_CODE = REPO_ROOT / "lambdas"


class DetrainStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        image_context: Path = IMAGE_CONTEXT,
        lambda_code: Path = LAMBDA_CODE,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        retain = settings.retain
        key = PlatformKey(self, "PlatformKey", retain=retain).key
        data = DataBucket(self, "Data", key=key, retain=retain)
        repository = ImageRepository(
            self, "Images", images_kept=settings.images_kept, retain=retain
        ).repository
        build = ImageBuild(
            self,
            "ImageBuild",
            context_dir=image_context,
            image_tag=image_tag(image_context, settings.image_build_args),
            build_args=settings.image_build_args,
            repository=repository,
            key=key,
            retain=retain,
        )
        training = TrainingRole(
            self, "Training", bucket=data.bucket, key=key, repository=repository
        )
        models = ModelRole(
            self,
            "Models",
            bucket=data.bucket,
            key=key,
            repository=repository,
            name_prefix=JOB_NAME_PREFIX,
        )
        notifications = Notifications(
            self, "Notifications", key=key, email=settings.notification_email
        )
        launcher = Launcher(
            self,
            "Launcher",
            code_dir=lambda_code,
            environment=launcher_environment(
                settings,
                bucket_name=data.bucket.bucket_name,
                image_uri=build.image_uri,
                training_role_arn=training.role.role_arn,
                output_kms_key_arn=key.key_arn,
                notifications_topic_arn=notifications.topic.topic_arn,
            ),
            bucket=data.bucket,
            key=key,
            repository=repository,
            training_role=training.role,
            topic=notifications.topic,
            reserved_concurrency=settings.launcher_concurrency,
            retain=retain,
        )
        for output_key, value in (
            (Output.BUCKET_NAME, data.bucket.bucket_name),
            (Output.REPOSITORY_URI, repository.repository_uri),
            (Output.IMAGE_URI, build.image_uri),
            (Output.SERVERLESS_IMAGE_URI, build.serving_image_uri),
            (Output.FUNCTION_NAME, launcher.function.function_name),
            (Output.TOPIC_ARN, notifications.topic.topic_arn),
            (Output.TRAINING_ROLE_ARN, training.role.role_arn),
            (Output.MODEL_ROLE_ARN, models.role.role_arn),
            (Output.KMS_KEY_ARN, key.key_arn),
            (Output.ENDPOINT_INSTANCE_TYPES, ",".join(settings.endpoint_instance_types)),
        ):
            CfnOutput(self, output_key, value=value)

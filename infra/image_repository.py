"""The training image repository (ECR): scanned on push, immutable tags, last N images kept."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ecr as ecr
from constructs import Construct

from launch_training.names import REPOSITORY_NAME


class ImageRepository(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, images_kept: int, retain: bool
    ) -> None:
        super().__init__(scope, construct_id)
        self.repository = ecr.Repository(
            self,
            "Repository",
            repository_name=REPOSITORY_NAME,
            image_scan_on_push=True,
            image_tag_mutability=ecr.TagMutability.IMMUTABLE,
            encryption=ecr.RepositoryEncryption.AES_256,
            lifecycle_rules=[
                ecr.LifecycleRule(
                    description=f"keep the last {images_kept} images",
                    tag_status=ecr.TagStatus.ANY,
                    max_image_count=images_kept,
                )
            ],
            removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
        )

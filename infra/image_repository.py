"""The image repository (ECR): scanned on push, immutable tags, the last N builds' images kept.

Each build pushes a training image and its CPU serving image (image_tag.IMAGES_PER_BUILD). ECR's
``imageCountMoreThan`` counts images, newest pushed first: the rule keeps N builds' worth, so
the serving image of the newest training tag is never the one expired, even with N = 1.
"""

from __future__ import annotations

from aws_cdk import aws_ecr as ecr
from constructs import Construct

from contract.names import REPOSITORY_NAME
from infra.checkov_skips import skip_check
from infra.image_tag import IMAGES_PER_BUILD
from infra.runtime import removal_policy


class ImageRepository(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, images_kept: int, retain: bool
    ) -> None:
        super().__init__(scope, construct_id)
        images = images_kept * IMAGES_PER_BUILD
        self.repository = ecr.Repository(
            self,
            "Repository",
            repository_name=REPOSITORY_NAME,
            image_scan_on_push=True,
            image_tag_mutability=ecr.TagMutability.IMMUTABLE,
            encryption=ecr.RepositoryEncryption.AES_256,
            lifecycle_rules=[
                ecr.LifecycleRule(
                    description=(
                        f"keep the last {images} images: {images_kept} builds' training "
                        "and CPU serving images"
                    ),
                    tag_status=ecr.TagStatus.ANY,
                    max_image_count=images,
                )
            ],
            removal_policy=removal_policy(retain),
        )
        # The build pushes an image before the deploy ends: if a later resource fails the first
        # deploy, its rollback must be able to delete the repository it created (ECR refuses
        # to delete a repository that holds images). When retained, CloudFormation deletes it
        # only in that rollback; with removalPolicy=destroy, also on `cdk destroy` (images are
        # rebuilt from training_image/). CDK's emptyOnDelete prop demands DESTROY, so set the
        # CloudFormation property itself.
        repository = self.repository.node.default_child
        assert isinstance(repository, ecr.CfnRepository)
        repository.empty_on_delete = True
        skip_check(
            repository,
            "CKV_AWS_136",
            "Accepted: images are encrypted at rest with AES-256 and hold code and public "
            "pretrained weights only, no user data. KMS encryption cannot be set on an existing "
            "repository: CloudFormation would replace it, and it cannot replace a resource with a "
            "fixed name (detrain-training), so every existing deployment's update would fail. "
            "A customer key would also need grants for CodeBuild's push and SageMaker's pull.",
        )

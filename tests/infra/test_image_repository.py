"""infra/image_repository.py: scan on push, immutable tags, keep the last N images."""

from __future__ import annotations

import json

from contract.names import REPOSITORY_NAME


def test_the_repository_scans_on_push_and_has_immutable_tags(template):
    template.has_resource_properties(
        "AWS::ECR::Repository",
        {
            "RepositoryName": REPOSITORY_NAME,
            "ImageScanningConfiguration": {"ScanOnPush": True},
            "ImageTagMutability": "IMMUTABLE",
        },
    )


def _kept(synthesized) -> int:
    repository = synthesized.only("AWS::ECR::Repository")
    policy = json.loads(repository["LifecyclePolicy"]["LifecyclePolicyText"])
    (rule,) = policy["rules"]
    assert rule["action"] == {"type": "expire"}
    assert rule["selection"]["tagStatus"] == "any"
    assert rule["selection"]["countType"] == "imageCountMoreThan"
    return rule["selection"]["countNumber"]


def test_the_lifecycle_keeps_the_configured_number_of_images(synthesized, other_shape):
    assert _kept(synthesized) == 10
    assert _kept(other_shape) == 3


def test_a_rolled_back_first_deploy_can_delete_the_repository_it_filled(synthesized, other_shape):
    """The build pushes before the deploy ends; ECR refuses to delete a repository holding
    images, so without EmptyOnDelete a failed first deploy would leave the fixed name taken."""
    for shape in (synthesized, other_shape):
        assert shape.only("AWS::ECR::Repository")["EmptyOnDelete"] is True

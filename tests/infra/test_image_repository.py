"""infra/image_repository.py: scan on push, immutable tags, keep the last N builds' images
(a training image and its CPU serving image each)."""

from __future__ import annotations

import json

from contract.names import REPOSITORY_NAME
from infra.image_tag import IMAGES_PER_BUILD, serving_image_tag
from infra.settings import IMAGES_KEPT
from tests.support.infra_shapes import OTHER_SHAPE


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


def test_the_lifecycle_keeps_both_images_of_the_configured_number_of_builds(
    synthesized, other_shape
):
    assert IMAGES_PER_BUILD == 2  # the training image and its CPU serving image
    assert _kept(synthesized) == 10 * IMAGES_PER_BUILD
    assert _kept(other_shape) == int(OTHER_SHAPE[IMAGES_KEPT]) * IMAGES_PER_BUILD


def test_the_newest_builds_pairs_survive_the_rule(other_shape):
    """ECR's imageCountMoreThan expires all but the newest countNumber images by push time;
    each build pushes its pair (buildspec.yml), so the images kept are whole pairs, the
    current training tag's serving image among them."""
    kept_builds = int(OTHER_SHAPE[IMAGES_KEPT])
    builds = kept_builds + 2
    pushes = [t for n in range(builds) for t in (f"tag{n}", serving_image_tag(f"tag{n}"))]

    kept = pushes[::-1][: _kept(other_shape)]

    newest = [f"tag{n}" for n in range(builds - kept_builds, builds)]
    assert sorted(kept) == sorted(t for tag in newest for t in (tag, serving_image_tag(tag)))


def test_a_rolled_back_first_deploy_can_delete_the_repository_it_filled(synthesized, other_shape):
    """The build pushes before the deploy ends; ECR refuses to delete a repository holding
    images, so without EmptyOnDelete a failed first deploy would leave the fixed name taken."""
    for shape in (synthesized, other_shape):
        assert shape.only("AWS::ECR::Repository")["EmptyOnDelete"] is True

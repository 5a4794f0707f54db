"""infra/image_repository.py: scan on push, immutable tags, keep the last N images."""

from __future__ import annotations

import json

from launch_training.names import REPOSITORY_NAME


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


def test_the_lifecycle_keeps_the_configured_number_of_images(synthesized, synth_variant):
    assert _kept(synthesized) == 10
    assert _kept(synth_variant({"detrain:imagesKept": "3"})) == 3

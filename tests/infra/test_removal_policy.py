"""A failed first deploy can be deployed again: what is retained is CloudFormation's
RetainExceptOnCreate, so the rollback of the deploy that created it deletes it, and no
fixed-name bucket or repository is left behind to fail the next deploy with "already exists"."""

from __future__ import annotations

RETAINED_TYPES = {
    "AWS::KMS::Key",
    "AWS::S3::Bucket",
    "AWS::ECR::Repository",
    "AWS::Logs::LogGroup",
    "AWS::SQS::Queue",
}


def _policies(synthesized) -> dict[str, tuple[str, str | None, str | None]]:
    resources = synthesized.template.to_json()["Resources"]
    return {
        name: (r["Type"], r.get("DeletionPolicy"), r.get("UpdateReplacePolicy"))
        for name, r in resources.items()
    }


def test_nothing_is_retained_when_the_deploy_that_created_it_rolls_back(synthesized):
    kept = [p for p in _policies(synthesized).values() if p[1] not in (None, "Delete")]

    assert {kind for kind, _, _ in kept} == RETAINED_TYPES
    # UpdateReplacePolicy has no RetainExceptOnCreate: a replaced resource is kept.
    assert {(deletion, replace) for _, deletion, replace in kept} == {
        ("RetainExceptOnCreate", "Retain")
    }


def test_every_retained_resource_is_deleted_with_a_destroy_stack(other_shape):
    policies = _policies(other_shape).values()

    assert {deletion for kind, deletion, _ in policies if kind in RETAINED_TYPES} == {"Delete"}
    assert "Retain" not in {deletion for _, deletion, _ in policies}

"""checkov's skips (`make checkov` runs checkov itself): each one, in every shape of the stack,
names a check and gives its reason; what could be fixed is fixed, not skipped."""

from __future__ import annotations

import pytest

from infra.checkov_skips import CHECK_ID, skip_check

MIN_REASON_LENGTH = 40  # a sentence, not "n/a"


def unexplained_skips(template: dict) -> list[str]:
    """`<logical id>: <skip>` for every checkov skip without a check id or a reason."""
    problems = []
    for logical_id, resource in template.get("Resources", {}).items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            check_id, comment = skip.get("id", ""), skip.get("comment", "")
            if not CHECK_ID.fullmatch(check_id) or len(comment.strip()) < MIN_REASON_LENGTH:
                problems.append(f"{logical_id}: {skip}")
    return problems


def skipped(template: dict) -> dict[str, set[str]]:
    return {
        logical_id: {skip["id"] for skip in resource["Metadata"]["checkov"]["skip"]}
        for logical_id, resource in template["Resources"].items()
        if "checkov" in resource.get("Metadata", {})
    }


@pytest.fixture(params=["defaults", "other-shape"])
def template(request, synthesized, other_shape) -> dict:
    return (synthesized if request.param == "defaults" else other_shape).template.to_json()


def test_every_checkov_skip_names_a_check_and_gives_a_reason(template):
    assert skipped(template), "no checkov skip found: is the metadata still written?"
    assert unexplained_skips(template) == []


def test_a_skip_without_a_reason_is_caught():
    def with_skip(**skip: str) -> dict:
        return {"Metadata": {"checkov": {"skip": [skip]}}}

    reason = "x" * MIN_REASON_LENGTH
    template = {
        "Resources": {
            "Fine": with_skip(id="CKV_AWS_18", comment=reason),
            "NoComment": with_skip(id="CKV_AWS_18"),
            "BadId": with_skip(id="AWS_18", comment=reason),
        }
    }

    assert [problem.split(":")[0] for problem in unexplained_skips(template)] == [
        "NoComment",
        "BadId",
    ]


def test_skip_check_refuses_an_empty_reason_or_a_malformed_id():
    import aws_cdk as cdk
    from aws_cdk import aws_sqs as sqs

    queue = sqs.Queue(cdk.Stack(cdk.App(), "Any"), "Queue")

    with pytest.raises(ValueError, match="needs a reason"):
        skip_check(queue, "CKV_AWS_27", "  ")
    with pytest.raises(ValueError, match="'AWS_27' is not of the form CKV_AWS_<n>"):
        skip_check(queue, "AWS_27", "a reason")


def test_skips_on_one_resource_accumulate(synthesized):
    template = synthesized.template.to_json()
    launcher = next(k for k in template["Resources"] if k.startswith("LauncherFunction"))

    assert skipped(template)[launcher] == {"CKV_AWS_115", "CKV_AWS_116", "CKV_AWS_117"}


def test_a_reserved_launcher_concurrency_is_not_skipped(other_shape):
    template = other_shape.template.to_json()
    launcher = next(k for k in template["Resources"] if k.startswith("LauncherFunction"))

    assert "CKV_AWS_115" not in skipped(template)[launcher]


def test_every_function_environment_is_encrypted_with_the_platform_key(template):
    """Fixed rather than skipped (CKV_AWS_173): the launcher and the Provider's functions."""
    key = next(k for k, r in template["Resources"].items() if r["Type"] == "AWS::KMS::Key")
    with_environment = {
        logical_id: resource["Properties"].get("KmsKeyArn")
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Function"
        and resource["Properties"].get("Environment", {}).get("Variables")
    }

    assert len(with_environment) == 4  # the launcher, the Provider's three framework functions
    assert set(map(str, with_environment.values())) == {str({"Fn::GetAtt": [key, "Arn"]})}

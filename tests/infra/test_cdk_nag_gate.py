"""The security gate: cdk-nag 3's AwsSolutions and NIST 800-53 R5 packs report nothing that
is not acknowledged, for the default settings and the other shapes the stack can take.

cdk-nag 3 is a validation plugin; ``Annotations.find_error`` sees none of its findings, so
the packs' validation is called directly here (the same packs app.py adds to every synth).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cdk_nag import AwsSolutionsChecks, NIST80053R5Checks

from tests.support.infra_shapes import OTHER_SHAPE

REPO_ROOT = Path(__file__).resolve().parents[2]

PACKS = {"AwsSolutions": AwsSolutionsChecks, "NIST.800.53.R5": NIST80053R5Checks}
VARIANTS = {
    "defaults": ({}, None),
    "account-and-region": ({}, {"account": "123456789012", "region": "eu-west-1"}),
    "destroy-email-concurrency": (OTHER_SHAPE, None),
}


def _findings(report) -> list[str]:
    return [
        f"{violation.rule_name}: {[r.construct_path for r in violation.violating_resources]}"
        for violation in report.violations
    ]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("pack", PACKS)
def test_the_rule_pack_reports_nothing_unacknowledged(synth_variant, pack, variant):
    overrides, env = VARIANTS[variant]
    synthesized = synth_variant(overrides, env)

    report = PACKS[pack]().validate_scope(synthesized.app)

    assert _findings(report) == []
    assert report.success


def test_the_gate_would_catch_an_unacknowledged_finding():
    import aws_cdk as cdk
    from aws_cdk import aws_sqs as sqs

    app = cdk.App()
    stack = cdk.Stack(app, "Unsafe")
    sqs.Queue(stack, "Plain", encryption=sqs.QueueEncryption.UNENCRYPTED)

    report = AwsSolutionsChecks().validate_scope(app)

    assert not report.success
    assert any(v.rule_name.startswith("AwsSolutions-SQS") for v in report.violations)


def test_every_acknowledgement_gives_a_reason(synthesized):
    from aws_cdk import Validations

    key = Validations.ACKNOWLEDGED_RULES_METADATA_KEY
    acknowledgements = [
        entry.data
        for construct in synthesized.stack.node.find_all()
        for entry in construct.node.metadata
        if entry.type == key
    ]

    assert acknowledgements
    for data in acknowledgements:
        for finding, reason in data.items():
            assert finding.split("::", 1)[1].startswith(tuple(PACKS)), finding
            assert len(reason) > 40, (finding, reason)


def test_every_acknowledgement_answers_a_finding_the_packs_make(unacknowledged):
    def covers(path: str, finding_path: str) -> bool:
        return finding_path == path or finding_path.startswith(f"{path}/")

    unanswered = [
        (finding, path)
        for finding, path in unacknowledged.acknowledgements
        if not any(
            rule == finding and covers(path, where) for rule, where in unacknowledged.findings
        )
    ]

    assert unacknowledged.findings
    assert unanswered == []


def test_docs_security_names_every_acknowledged_rule(unacknowledged):
    security = (REPO_ROOT / "docs" / "security.md").read_text()

    for finding, _ in unacknowledged.acknowledgements:
        rule = finding.split("[", 1)[0].removeprefix("NIST.800.53.R5-")
        assert rule.removeprefix("AwsSolutions-") in security, finding

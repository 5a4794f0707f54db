"""One synthesized Detrain stack per session (synth costs seconds), from cdk.json's context,
so the tests see what ``npx cdk synth`` deploys; ``synth_variant`` for other settings."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


@dataclass
class Synthesized:
    app: Any  # aws_cdk.App
    stack: Any  # infra.stack.DetrainStack
    template: Any  # aws_cdk.assertions.Template

    def resources(self, resource_type: str) -> dict[str, dict]:
        return self.template.find_resources(resource_type)

    def only(self, resource_type: str) -> dict:
        found = list(self.resources(resource_type).values())
        assert len(found) == 1, f"expected one {resource_type}, found {len(found)}"
        return found[0]["Properties"]


def _synthesize(overrides: dict[str, Any], env: dict[str, str] | None, outdir: Path) -> Synthesized:
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from contract.names import STACK_NAME
    from infra.settings import from_context, load_context
    from infra.stack import DetrainStack

    context = {**load_context(REPO_ROOT / "cdk.json"), **overrides}
    # outdir under pytest's temp root: without one, CDK leaves a /tmp/cdk.out* per synth.
    app = cdk.App(context=context, outdir=str(outdir))
    stack = DetrainStack(
        app,
        STACK_NAME,
        settings=from_context(context),
        env=cdk.Environment(**env) if env else None,
    )
    return Synthesized(app=app, stack=stack, template=Template.from_stack(stack))


@pytest.fixture(scope="session")
def synth_variant(tmp_path_factory) -> Callable[..., Synthesized]:
    cache: dict[str, Synthesized] = {}

    def variant(overrides: dict[str, Any] | None = None, env: dict[str, str] | None = None):
        key = repr((sorted((overrides or {}).items()), sorted((env or {}).items())))
        if key not in cache:
            cache[key] = _synthesize(overrides or {}, env, tmp_path_factory.mktemp("cdk.out"))
        return cache[key]

    return variant


@dataclass
class Unacknowledged:
    """What the rule packs find when no acknowledgement is made, and what the code acknowledges."""

    findings: list[tuple[str, str]]  # (finding id, construct path)
    acknowledgements: list[tuple[str, str]]  # (finding id, construct path)


class _AcknowledgementRecorder:
    """Stands in for aws_cdk.Validations in infra.nag: writes acknowledgements down only."""

    def __init__(self) -> None:
        self.acknowledged: list[tuple[str, str]] = []

    def of(self, construct):
        recorder = self

        class _Scope:
            def acknowledge(self, *acknowledgements) -> None:
                recorder.acknowledged.extend((a.id, construct.node.path) for a in acknowledgements)

        return _Scope()


@pytest.fixture(scope="session")
def unacknowledged(tmp_path_factory) -> Unacknowledged:
    from cdk_nag import AwsSolutionsChecks, NIST80053R5Checks

    from infra import nag

    recorder = _AcknowledgementRecorder()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(nag, "Validations", recorder)
        synthesized = _synthesize({}, None, tmp_path_factory.mktemp("cdk.out"))
    findings = [
        (violation.rule_name, resource.construct_path)
        for pack in (AwsSolutionsChecks(), NIST80053R5Checks())
        for violation in pack.validate_scope(synthesized.app).violations
        for resource in violation.violating_resources
    ]
    return Unacknowledged(findings=findings, acknowledgements=recorder.acknowledged)


@pytest.fixture(scope="session")
def synthesized(synth_variant) -> Synthesized:
    return synth_variant()


@pytest.fixture(scope="session")
def other_shape(synth_variant) -> Synthesized:
    """The stack with every shape-changing setting away from its default (shapes.py)."""
    from tests.support.infra_shapes import OTHER_SHAPE

    return synth_variant(OTHER_SHAPE)


@pytest.fixture(scope="session")
def template(synthesized: Synthesized):
    return synthesized.template

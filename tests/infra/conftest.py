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


def _synthesize(overrides: dict[str, Any], env: dict[str, str] | None) -> Synthesized:
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from infra.settings import from_context, load_context
    from infra.stack import DetrainStack
    from launch_training.names import STACK_NAME

    context = {**load_context(REPO_ROOT / "cdk.json"), **overrides}
    app = cdk.App(context=context)
    stack = DetrainStack(
        app,
        STACK_NAME,
        settings=from_context(context),
        env=cdk.Environment(**env) if env else None,
    )
    return Synthesized(app=app, stack=stack, template=Template.from_stack(stack))


@pytest.fixture(scope="session")
def synth_variant() -> Callable[..., Synthesized]:
    cache: dict[str, Synthesized] = {}

    def variant(overrides: dict[str, Any] | None = None, env: dict[str, str] | None = None):
        key = repr((sorted((overrides or {}).items()), sorted((env or {}).items())))
        if key not in cache:
            cache[key] = _synthesize(overrides or {}, env)
        return cache[key]

    return variant


@pytest.fixture(scope="session")
def synthesized(synth_variant) -> Synthesized:
    return synth_variant()


@pytest.fixture(scope="session")
def template(synthesized: Synthesized):
    return synthesized.template

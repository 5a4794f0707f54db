"""app.py as ``cdk synth`` runs it: a bad setting stops synth with a message naming it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from infra.settings import INSTANCE_TYPES, SPOT, load_context

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_a_bad_setting_fails_synth_naming_the_key_and_the_allowed_values(tmp_path, clean_env):
    context = {**load_context(REPO_ROOT / "cdk.json"), SPOT: "sometimes"}
    env = {**clean_env, "CDK_CONTEXT_JSON": json.dumps(context), "CDK_OUTDIR": str(tmp_path)}

    result = subprocess.run(
        [sys.executable, "app.py"], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )

    assert result.returncode != 0
    assert f"{SPOT}='sometimes' is not allowed; allowed: required, preferred, off" in result.stderr
    assert not list(tmp_path.glob("*.template.json"))


def test_an_instance_type_sagemaker_lacks_fails_synth_naming_close_matches(tmp_path, clean_env):
    context = {**load_context(REPO_ROOT / "cdk.json")}
    context[INSTANCE_TYPES] = [*context[INSTANCE_TYPES], "ml.g5.3xlarge"]
    env = {**clean_env, "CDK_CONTEXT_JSON": json.dumps(context), "CDK_OUTDIR": str(tmp_path)}

    result = subprocess.run(
        [sys.executable, "app.py"], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )

    assert result.returncode != 0
    assert f"{INSTANCE_TYPES} holds 'ml.g5.3xlarge', not a SageMaker training" in result.stderr
    assert "close matches: " in result.stderr and "ml.g5.2xlarge" in result.stderr
    assert not list(tmp_path.glob("*.template.json"))

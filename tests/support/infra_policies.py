"""Reading IAM statements of one role out of a synthesized template."""

from __future__ import annotations

import json


def statements_of(synthesized, role_prefix: str) -> list[dict]:
    """Every statement of the policies attached to roles whose logical id starts so."""
    roles = [
        name for name in synthesized.resources("AWS::IAM::Role") if name.startswith(role_prefix)
    ]
    assert len(roles) == 1, f"expected one role {role_prefix}*, found {roles}"
    found = []
    for policy in synthesized.resources("AWS::IAM::Policy").values():
        attached = [role.get("Ref") for role in policy["Properties"].get("Roles", [])]
        if roles[0] in attached:
            found.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return found


def by_sid(statements: list[dict], sid: str) -> dict:
    (statement,) = [s for s in statements if s.get("Sid") == sid]
    return statement


def actions(statements: list[dict]) -> set[str]:
    found: set[str] = set()
    for statement in statements:
        value = statement["Action"]
        found.update([value] if isinstance(value, str) else value)
    return found


def text(value) -> str:
    return json.dumps(value)

"""Every field of a request against SageMaker's service model: botocore's own validator (types,
required members, minimums) and what it leaves out (maximums, enums, patterns: all but the
few in Java's \\p{...} syntax)."""

from __future__ import annotations

import re

import botocore.session
from botocore.validate import ParamValidator

MODEL = botocore.session.get_session().get_service_model("sagemaker")


def problems(operation: str, request: dict) -> list[str]:
    shape = MODEL.operation_model(operation).input_shape
    report = ParamValidator().validate(request, shape)
    found = [report.generate_report()] if report.has_errors() else []
    _walk(shape, request, operation, found)
    return found


def _walk(shape, value, where: str, found: list[str]) -> None:
    meta = shape.metadata
    if shape.type_name == "structure":
        for name, member in shape.members.items():
            if name in value:
                _walk(member, value[name], f"{where}.{name}", found)
    elif shape.type_name == "list":
        if "max" in meta and len(value) > meta["max"]:
            found.append(f"{where}: {len(value)} items, at most {meta['max']}")
        for i, item in enumerate(value):
            _walk(shape.member, item, f"{where}[{i}]", found)
    elif shape.type_name == "map":
        for key, item in value.items():
            _walk(shape.key, key, f"{where} key", found)
            _walk(shape.value, item, f"{where}[{key}]", found)
    elif shape.type_name == "string":
        if "max" in meta and len(value) > meta["max"]:
            found.append(f"{where}: {len(value)} characters, at most {meta['max']}")
        if shape.enum and value not in shape.enum:
            found.append(f"{where}: {value!r} not in {shape.name}'s enum")
        pattern = _compiled(meta.get("pattern"))
        if pattern is not None and not pattern.fullmatch(value):
            found.append(f"{where}: {value!r} does not match {meta['pattern']}")
    elif shape.type_name in ("integer", "long") and "max" in meta and value > meta["max"]:
        found.append(f"{where}: {value} above {meta['max']}")


def _compiled(pattern: str | None) -> re.Pattern | None:
    """A pattern Python can read; None for none, or for Java's \\p{...} classes (the tag
    patterns), which Python's re lacks."""
    if pattern is None:
        return None
    try:
        return re.compile(pattern, re.DOTALL)
    except re.error:
        return None

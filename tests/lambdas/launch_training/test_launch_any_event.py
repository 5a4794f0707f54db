"""No event shape makes the handler raise: thousands of malformed payloads, each answered.

A seeded generator (hypothesis is not a dependency) mutates the real payloads: a field
replaced by another JSON type, removed, or given an edge value (a number for a key, a time
of year 1 or 9999 with an offset, huge or empty strings), and adds payloads that are no
object at all. Every answer is a result: refused, skipped or (for an intact trigger)
launched. A refusal of anything the launcher cannot read lists the supported shapes.
"""

from __future__ import annotations

import copy
import json
import random
from types import SimpleNamespace

import boto3
import pytest

from launch_training.handler import handler
from tests.support.launcher_world import payload, sample_event

SEEDS = range(6)
CASES_PER_SEED = 60
ODD_VALUES = [
    None,
    True,
    0,
    -1,
    12345,
    2**64,
    1.5,
    float("nan"),
    "",
    " ",
    "x" * 5000,
    "null",
    "datasets/fridge/_launch.json",
    "datasets/%ZZ/_launch.json",
    "0001-01-01T00:00:00+05:00",
    "9999-12-31T23:59:59-05:00",
    "0001-01-01T00:00:00",
    [],
    [None],
    {},
    {"name": 7},
    {"key": ["k"]},
]
BASES = [
    ("payload", "s3_put_versioned_unicode.json"),
    ("payload", "s3_put_moto.json"),
    ("payload", "s3_records_not_triggers.json"),
    ("payload", "s3_test_event.json"),
    ("payload", "eventbridge_trigger.json"),
    ("payload", "eventbridge_object_created_docs.json"),
    ("sample", "console-minimal.json"),
    ("sample", "console-overrides.json"),
]


def paths(value, prefix=()):
    """Every path to a value inside nested dicts and lists."""
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from paths(child, (*prefix, index))


def mutate(event, rng: random.Random):
    event = copy.deepcopy(event)
    for _ in range(rng.randint(1, 3)):
        candidates = [p for p in paths(event) if p]
        if not candidates:
            break
        path = rng.choice(candidates)
        parent = event
        for step in path[:-1]:
            parent = parent[step]
        if isinstance(parent, dict) and rng.random() < 0.25:
            del parent[path[-1]]
        else:
            parent[path[-1]] = copy.deepcopy(rng.choice(ODD_VALUES))
    return event


def malformed_events(seed: int):
    rng = random.Random(seed)
    loaded = [payload(n) if kind == "payload" else sample_event(n) for kind, n in BASES]
    yield from (None, [], "fridge", 3, 2.5, True, [{"dataset": "fridge"}], {}, {"Records": None})
    for _ in range(CASES_PER_SEED):
        yield mutate(rng.choice(loaded), rng)


def answers(result) -> list[dict]:
    return result.get("results", [result])


@pytest.mark.parametrize("seed", SEEDS)
def test_no_event_shape_escapes_the_handler(deployed, seed):
    deployed.put_dataset("fridge", trigger=b"{}")
    boto3.client("sns").create_topic(Name="detrain-notifications")  # refusals are published
    context = SimpleNamespace(aws_request_id=f"request-{seed}")

    for event in malformed_events(seed):
        shown = json.dumps(event, default=repr)[:300]
        result = handler(event, context)  # an exception here fails the test with the event

        assert isinstance(result, dict), shown
        for answer in answers(result):
            assert answer["status"] in ("launched", "already_launched", "refused", "skipped"), shown
            if answer["status"] in ("refused", "skipped"):
                assert answer["reason"], shown


@pytest.mark.parametrize("event", [None, [], "fridge", 3, {}, {"hyperparameters": {}}])
def test_an_unsupported_shape_is_refused_naming_the_supported_ones(deployed, event):
    result = handler(event, None)

    assert result["status"] == "refused"
    assert "supported events: an S3 notification" in result["reason"]
    assert "EventBridge" in result["reason"] and "console request" in result["reason"]

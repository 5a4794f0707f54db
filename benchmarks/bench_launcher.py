"""Launcher: 1,000 deliveries of one trigger event -> exactly one job; import time; latency.

Runs its own moto server on loopback. Baselines, measured in the same run: a fresh
interpreter importing boto3 alone (for the handler's import), and one bare
DescribeTrainingJob call (the least a redelivery must cost: the handler makes it too).
Run: .venv/bin/python benchmarks/bench_launcher.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "lambdas"), str(ROOT / "training_image"), str(ROOT)]
from detrain import emulator  # noqa: E402

DELIVERIES = 1000
LAUNCHER = emulator.launcher_settings()  # the tests' launcher environment
BUCKET = LAUNCHER.data_bucket


def fresh_import_seconds(module: str, repeats: int = 5) -> float:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path[:2])}
    runs = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(repeats)
    ]
    return statistics.median(runs)


def main() -> None:
    boto3_import = fresh_import_seconds("boto3")
    handler_import = fresh_import_seconds("launch_training.handler")
    print(
        f"import: handler {handler_import * 1000:.0f} ms, boto3 alone {boto3_import * 1000:.0f} ms "
        f"(ratio {handler_import / boto3_import:.2f})"
    )

    with emulator.emulated_aws("us-east-1", "bench"):
        measure()


def measure() -> None:
    os.environ.update(LAUNCHER.to_environ())
    import logging

    import boto3

    s3, sagemaker = boto3.client("s3"), boto3.client("sagemaker")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="datasets/fridge/images/0.jpg", Body=b"jpg")
    s3.put_object(Bucket=BUCKET, Key="datasets/fridge/_launch.json", Body=b"{}")
    emulator.register_image(LAUNCHER.image.repository, LAUNCHER.image.tag)
    event = json.loads((ROOT / "events" / "s3-put-trigger.json").read_text())
    event["Records"][0]["s3"]["object"]["key"] = "datasets/fridge/_launch.json"

    from launch_training.handler import handler

    logging.getLogger("launch_training").setLevel(logging.WARNING)
    latencies, statuses = [], []
    for _ in range(DELIVERIES):
        start = time.perf_counter()
        statuses.append(handler(event, None)["results"][0]["status"])
        latencies.append(time.perf_counter() - start)
    jobs = sagemaker.list_training_jobs(MaxResults=100)["TrainingJobSummaries"]
    name = jobs[0]["TrainingJobName"]
    bare = []
    for _ in range(200):
        start = time.perf_counter()
        sagemaker.describe_training_job(TrainingJobName=name)
        bare.append(time.perf_counter() - start)

    assert len(jobs) == 1, f"{len(jobs)} jobs from {DELIVERIES} deliveries"
    assert statuses.count("launched") == 1 and statuses.count("already_launched") == DELIVERIES - 1
    first, rest = latencies[0], sorted(latencies[1:])
    median, p95 = statistics.median(rest), rest[int(0.95 * len(rest))]
    baseline = statistics.median(bare)
    print(
        f"deliveries: {DELIVERIES} -> {len(jobs)} job "
        f"({statuses.count('already_launched')} already_launched)"
    )
    print(f"first delivery (launch, cold clients): {first * 1000:.1f} ms")
    print(
        f"redelivery: median {median * 1000:.2f} ms, p95 {p95 * 1000:.2f} ms; "
        f"bare DescribeTrainingJob {baseline * 1000:.2f} ms (ratio {median / baseline:.2f})"
    )


if __name__ == "__main__":
    main()

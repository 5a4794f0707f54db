"""What the infrastructure costs on every synth: the image tag (a hash of training_image/),
the synth itself, and the two cdk-nag packs. Baselines are measured in the same process:
reading the same files without hashing; synth without the packs."""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "lambdas"), str(REPO_ROOT / "training_image")]
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from infra.image_tag import build_context_files, content_hash  # noqa: E402

CONTEXT = REPO_ROOT / "training_image"


def timed(function, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def read_only() -> int:
    return sum(len((CONTEXT / f).read_bytes()) for f in build_context_files(CONTEXT))


def synth(with_packs: bool) -> None:
    import aws_cdk as cdk
    from aws_cdk.assertions import Template
    from cdk_nag import AwsSolutionsChecks, NIST80053R5Checks

    from infra.settings import from_context, load_context
    from infra.stack import DetrainStack

    context = load_context(REPO_ROOT / "cdk.json")
    app = cdk.App(context=context)
    stack = DetrainStack(app, "Detrain", settings=from_context(context))
    Template.from_stack(stack)
    if with_packs:
        for pack in (AwsSolutionsChecks(), NIST80053R5Checks()):
            assert pack.validate_scope(app).success


def main() -> None:
    files = len(build_context_files(CONTEXT))
    size = read_only()
    baseline = timed(read_only, 20)
    hashing = timed(lambda: content_hash(CONTEXT), 20)
    print(f"image tag over {files} files, {size / 1e3:.0f} kB")
    print(f"  read only (baseline): {baseline * 1e3:.2f} ms")
    print(f"  content_hash:         {hashing * 1e3:.2f} ms  ratio {hashing / baseline:.2f}")

    start = time.perf_counter()
    import aws_cdk  # noqa: F401
    import cdk_nag  # noqa: F401

    print(f"import aws_cdk + cdk_nag: {time.perf_counter() - start:.2f} s")
    synth(with_packs=True)  # warm the jsii kernel and the asset staging
    plain_samples, checked_samples = [], []
    for _ in range(4):  # interleaved, so warm-up and drift fall on both alike
        plain_samples.append(timed(lambda: synth(with_packs=False), 1))
        checked_samples.append(timed(lambda: synth(with_packs=True), 1))
    plain, checked = statistics.median(plain_samples), statistics.median(checked_samples)
    print(f"synth, no packs (baseline): {plain:.2f} s")
    print(f"synth + AwsSolutions + NIST: {checked:.2f} s  ratio {checked / plain:.2f}")


if __name__ == "__main__":
    main()

"""training_image/buildspec.yml, run as CodeBuild runs it: log in, then build, size-check and
self-check the training image and the CPU serving image, then push both.

CodeBuild runs a phase's commands in order in one shell (buildspec 0.2: variables carry over)
and stops the phase at the first that fails; a post_build phase would run even after a failed
build phase. So the checks and the pushes are all build-phase commands, the pushes last: an
image that fails a check is never pushed, nor is its partner.

No Docker engine or AWS account here: the commands run under bash with stand-ins for `docker`
and `aws` on the PATH, which record each call and answer as the real ones do (an image's size,
a self-check's exit status, whether the repository holds a tag).
"""

from __future__ import annotations

import os
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from infra.build_on_deploy.handler import IMAGE_TAG_VARIABLE, SERVING_IMAGE_TAG_VARIABLE
from infra.image_build import BUILDSPEC, REPOSITORY_URI_VARIABLE
from infra.image_tag import IMAGES_PER_BUILD, serving_image_tag
from infra.settings import TORCH_INDEX_URL, TORCH_INDEX_URLS

REPO_ROOT = Path(__file__).resolve().parents[2]
URI = "123456789012.dkr.ecr.us-east-1.amazonaws.com/detrain-training"
TAG = "0123456789abcdef"
TRAINING, SERVING = f"{URI}:{TAG}", f"{URI}:{serving_image_tag(TAG)}"
LIMIT_VARIABLE = "SERVERLESS_IMAGE_LIMIT_BYTES"
TEN_GB = 10_000_000_000
CPU_INDEX = "https://download.pytorch.org/whl/cpu"

# Calls are written one a line, arguments separated by tabs, each line in one write: the
# login pipeline runs `aws` and `docker` at once, and three appends each interleaved them.
DOCKER = r"""#!/bin/sh
line="docker$(printf '\t%s' "$@")"; printf '%s\n' "$line" >> "$CALLS"
for last; do :; done
case "$1" in
  login) cat > /dev/null ;;
  image) case "$last" in *"$SERVING_IMAGE_TAG") echo "$SERVING_BYTES" ;;
         *) echo "$TRAINING_BYTES" ;; esac ;;
  run) for word; do case "$word" in *:*) image="$word" ;; esac; done
       [ "$image" = "$FAILING_SELF_CHECK" ] && { echo "✗ a check failed"; exit 1; }
       echo "✓ all checks passed" ;;
  push) [ "$last" = "$FAILING_PUSH" ] && exit 1 ;;
esac
exit 0
"""
AWS = r"""#!/bin/sh
line="aws$(printf '\t%s' "$@")"; printf '%s\n' "$line" >> "$CALLS"
case "$2" in
  get-login-password) echo password ;;
  describe-images)
    for word; do case "$word" in imageTag=*) tag="${word#imageTag=}" ;; esac; done
    case " $EXISTING_TAGS " in *" $tag "*) echo '{"imageDetails": [{}]}' ;;
      *) echo "An error occurred (ImageNotFoundException)" >&2; exit 254 ;; esac ;;
esac
"""


def _spec() -> dict:
    return yaml.safe_load((REPO_ROOT / "training_image" / BUILDSPEC).read_text())


@dataclass
class Run:
    status: int
    output: str
    calls: list[list[str]]

    def of(self, *words: str) -> list[int]:
        """Indexes of the calls that start with ``words``."""
        return [i for i, call in enumerate(self.calls) if call[: len(words)] == list(words)]

    def pushed(self) -> list[str]:
        return [self.calls[i][-1] for i in self.of("docker", "push")]


def _run(tmp_path: Path, **environment: str) -> Run:
    """The buildspec's phases in order, each command as CodeBuild runs it, stopping at the
    first that fails."""
    spec = _spec()
    assert spec["env"]["shell"] == "bash"
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir(parents=True)
    calls.write_text("")
    for name, script in (("docker", DOCKER), ("aws", AWS)):
        (bin_dir / name).write_text(script)
        (bin_dir / name).chmod(stat.S_IRWXU)
    script = []
    for phase, body in spec["phases"].items():
        for index, command in enumerate(body["commands"]):
            stop = f'status=$?; [ "$status" = 0 ] || exit "$status"  # {phase} {index}'
            script += [command, stop]
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "CALLS": str(calls),
        "AWS_REGION": "us-east-1",
        REPOSITORY_URI_VARIABLE: URI,
        IMAGE_TAG_VARIABLE: TAG,
        SERVING_IMAGE_TAG_VARIABLE: serving_image_tag(TAG),
        "TRAINING_BYTES": "7210000000",
        "SERVING_BYTES": "1640000000",
        **spec["env"]["variables"],
        **environment,
    }
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,  # a hang guard only: a few stand-in calls, but CI's machine may be loaded
    )
    recorded = [line.split("\t") for line in calls.read_text().splitlines()]
    return Run(done.returncode, done.stdout + done.stderr, recorded)


def test_each_image_is_built_sized_and_self_checked_and_only_then_both_are_pushed(tmp_path):
    run = _run(tmp_path)

    assert run.status == 0, run.output
    steps = {}
    for image in (TRAINING, SERVING):
        (build,) = [i for i in run.of("docker", "build") if run.calls[i][-2] == image]
        (size,) = [i for i in run.of("docker", "image", "inspect") if run.calls[i][-1] == image]
        (check,) = [i for i in run.of("docker", "run") if image in run.calls[i]]
        assert build < size < check
        assert run.calls[check][-2:] == [image, "self-check"]
        options = run.calls[check][2:-2]
        assert "--rm" in options and options[options.index("--network") + 1] == "none"
        steps[image] = check
    assert max(steps.values()) < min(run.of("docker", "push"))
    assert run.pushed() == [TRAINING, SERVING]
    assert len(run.pushed()) == IMAGES_PER_BUILD  # what the repository's lifecycle rule counts


def test_the_build_log_records_both_images_sizes_in_gb(tmp_path):
    run = _run(tmp_path)

    assert "training image size: 7.21 GB" in run.output
    assert "serving image (cpu) size: 1.64 GB, serverless limit 10.00 GB" in run.output


def _build_args(run: Run, image: str) -> list[str]:
    (build,) = [run.calls[i] for i in run.of("docker", "build") if run.calls[i][-2] == image]
    assert build[-3:] == ["--tag", image, "."]
    return [build[i + 1] for i, word in enumerate(build) if word == "--build-arg"]


@pytest.mark.parametrize("cuda", sorted(TORCH_INDEX_URLS))
def test_the_serving_image_is_the_cpu_flavour_whatever_the_training_cuda(tmp_path, cuda):
    index = TORCH_INDEX_URLS[cuda]
    run = _run(tmp_path, **({TORCH_INDEX_URL: index} if index else {}))

    assert _build_args(run, SERVING) == [
        "ACCELERATOR=cpu",
        f"{TORCH_INDEX_URL}={CPU_INDEX}",
        "PRETRAINED_WEIGHTS=none",  # a served model loads its own weights
    ]
    # The training image: the Dockerfile's defaults (ACCELERATOR=cuda, every pretrained weight);
    # an empty flavour passes no --build-arg at all.
    assert _build_args(run, TRAINING) == ([f"{TORCH_INDEX_URL}={index}"] if index else [])


def test_the_limit_is_serverless_inferences_ten_gb():
    assert int(_spec()["env"]["variables"][LIMIT_VARIABLE]) == TEN_GB


@pytest.mark.parametrize(
    ("serving_bytes", "passes"), [(TEN_GB, True), (TEN_GB + 1, False)], ids=["at", "over"]
)
def test_a_serving_image_over_the_serverless_limit_fails_the_build_before_any_push(
    tmp_path, serving_bytes, passes
):
    run = _run(tmp_path, SERVING_BYTES=str(serving_bytes))

    assert (run.status == 0) is passes, run.output
    if passes:
        assert run.pushed() == [TRAINING, SERVING]
    else:
        assert "over the serverless limit" in run.output
        assert run.pushed() == []
        assert run.of("docker", "run", "--rm", "--network", "none", SERVING) == []


@pytest.mark.parametrize("failing", [TRAINING, SERVING], ids=["training", "serving"])
def test_a_failed_self_check_of_either_image_pushes_neither(tmp_path, failing):
    run = _run(tmp_path, FAILING_SELF_CHECK=failing)

    assert run.status != 0
    assert run.pushed() == []


def test_a_failed_push_fails_the_build(tmp_path):
    run = _run(tmp_path, FAILING_PUSH=TRAINING)

    assert run.status != 0
    assert run.pushed() == [TRAINING]


def test_a_tag_the_repository_holds_is_not_pushed_again(tmp_path):
    """A retried build after one of the pair's pushes failed: tags are immutable, so pushing
    the held one again would fail the build for good."""
    run = _run(tmp_path, EXISTING_TAGS=TAG)

    assert run.status == 0, run.output
    assert run.pushed() == [SERVING]
    assert f"{TRAINING} is there already: not pushed" in run.output


def test_the_build_needs_both_tags_and_logs_in_before_building(tmp_path):
    missing = _run(tmp_path / "a", **{SERVING_IMAGE_TAG_VARIABLE: ""})
    run = _run(tmp_path / "b")

    assert missing.status != 0 and missing.calls == []
    assert f"no {SERVING_IMAGE_TAG_VARIABLE}" in missing.output
    (login,) = run.of("docker", "login")
    assert run.calls[login][-1] == URI.split("/")[0]
    assert login < min(run.of("docker", "build"))
    assert "post_build" not in _spec()["phases"]  # it would run after a failed build phase

"""training_image/buildspec.yml, read as CodeBuild reads it: log in, build, self-check, push.

CodeBuild runs a phase's commands in order and stops the phase at the first that fails; the
post_build phase runs even after a failed build phase. So the image's self-check and the push
must both be build-phase commands, the self-check first: an image that fails it is never pushed.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path

import yaml

from infra.build_on_deploy.handler import IMAGE_TAG_VARIABLE
from infra.image_build import BUILDSPEC, REPOSITORY_URI_VARIABLE
from infra.settings import TORCH_INDEX_URL

REPO_ROOT = Path(__file__).resolve().parents[2]
IMAGE = f'"${{{REPOSITORY_URI_VARIABLE}}}:${{{IMAGE_TAG_VARIABLE}}}"'
SELF_CHECK = "self-check"  # the image's entry point `train` takes it as its first argument


def _spec() -> dict:
    return yaml.safe_load((REPO_ROOT / "training_image" / BUILDSPEC).read_text())


def _commands() -> list[tuple[str, str]]:
    """(phase, command) in the order CodeBuild runs them."""
    return [
        (phase, command)
        for phase, body in _spec()["phases"].items()
        for command in body["commands"]
    ]


def _only(commands: list[tuple[str, str]], matches: Callable[[str], bool]) -> int:
    found = [index for index, (_, command) in enumerate(commands) if matches(command)]
    assert len(found) == 1, f"expected one such command, found {len(found)}"
    return found[0]


def test_the_buildspec_logs_in_builds_tags_with_the_hash_and_pushes():
    spec = _spec()
    commands = "\n".join(command for _, command in _commands())

    assert spec["version"] == 0.2
    assert "aws ecr get-login-password" in commands
    assert "docker login --username AWS --password-stdin" in commands
    assert "docker build --pull" in commands
    # an empty flavour passes no --build-arg, so the Dockerfile's default applies
    build_arg = f'--build-arg "{TORCH_INDEX_URL}=${{{TORCH_INDEX_URL}}}"'
    assert f"${{{TORCH_INDEX_URL}:+{build_arg}}}" in commands
    assert f"--tag {IMAGE} ." in commands
    assert f"docker push {IMAGE}" in commands


def test_the_image_is_built_then_checked_offline_then_pushed_in_one_phase():
    commands = _commands()

    build = _only(commands, lambda c: c.startswith("docker build "))
    check = _only(commands, lambda c: c.startswith("docker run ") and SELF_CHECK in c)
    push = _only(commands, lambda c: c.startswith("docker push "))

    assert build < check < push
    assert {commands[i][0] for i in (build, check, push)} == {"build"}
    words = shlex.split(commands[check][1])
    assert words[-2:] == [shlex.split(IMAGE)[0], SELF_CHECK]  # the image just built
    options = words[2:-2]
    assert "--rm" in options
    assert options[options.index("--network") + 1] == "none"


def test_the_build_log_records_the_image_size_before_the_push():
    commands = _commands()

    size = _only(commands, lambda c: c.startswith("docker image inspect "))
    push = _only(commands, lambda c: c.startswith("docker push "))

    assert size < push
    assert "--format '{{.Size}}'" in commands[size][1]
    assert IMAGE in commands[size][1]
    assert "GB" in commands[size][1]

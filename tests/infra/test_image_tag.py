"""infra.image_tag: the training image's tag hashes training_image/ and its build args; the CPU
serving image's tag follows it."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.image_tag import (
    TAG_LENGTH,
    build_context_files,
    content_hash,
    image_tag,
    serving_image_tag,
)


@pytest.fixture
def context_dir(tmp_path: Path) -> Path:
    root = tmp_path / "training_image"
    (root / "trainer").mkdir(parents=True)
    (root / "Dockerfile").write_text("FROM public.ecr.aws/docker/library/python:3.11-slim\n")
    (root / "trainer" / "main.py").write_text("print('train')\n")
    return root


def test_the_same_tree_gives_the_same_tag(context_dir, tmp_path):
    copy = tmp_path / "copy"
    copy.mkdir()
    for relative in build_context_files(context_dir):
        (copy / relative).parent.mkdir(parents=True, exist_ok=True)
        (copy / relative).write_bytes((context_dir / relative).read_bytes())

    tag = content_hash(context_dir)

    assert tag == content_hash(copy)
    assert len(tag) == TAG_LENGTH and int(tag, 16) >= 0


@pytest.mark.parametrize(
    "change",
    [
        lambda root: (root / "trainer" / "main.py").write_text("print('train!')\n"),
        lambda root: (root / "trainer" / "main.py").rename(root / "trainer" / "run.py"),
        lambda root: (root / "trainer" / "new.py").write_text(""),
        lambda root: (root / "Dockerfile").unlink(),
    ],
    ids=["edit", "rename", "add", "remove"],
)
def test_any_change_to_a_file_changes_the_tag(context_dir, change):
    before = content_hash(context_dir)

    change(context_dir)

    assert content_hash(context_dir) != before


def test_caches_do_not_change_the_tag(context_dir):
    before = content_hash(context_dir)

    (context_dir / "trainer" / "__pycache__").mkdir()
    (context_dir / "trainer" / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"\0")
    (context_dir / ".pytest_cache").mkdir()
    (context_dir / ".pytest_cache" / "README.md").write_text("cache")
    (context_dir / "stray.pyc").write_bytes(b"\0")

    assert content_hash(context_dir) == before


def test_a_missing_directory_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        content_hash(tmp_path / "nowhere")


CU126 = {"TORCH_INDEX_URL": "https://download.pytorch.org/whl/cu126"}


def test_empty_build_args_leave_the_content_hash(context_dir):
    assert image_tag(context_dir, {}) == content_hash(context_dir)
    assert image_tag(context_dir, {"TORCH_INDEX_URL": ""}) == content_hash(context_dir)


def test_a_build_arg_changes_the_tag(context_dir):
    tag = image_tag(context_dir, CU126)

    assert tag != content_hash(context_dir)
    assert tag != image_tag(
        context_dir, {"TORCH_INDEX_URL": "https://download.pytorch.org/whl/cu128"}
    )
    assert tag != image_tag(context_dir, {"OTHER_ARG": CU126["TORCH_INDEX_URL"]})
    assert len(tag) == TAG_LENGTH


def test_the_order_of_build_args_does_not_matter(context_dir):
    args = {**CU126, "PRETRAINED_WEIGHTS": "none"}

    assert image_tag(context_dir, args) == image_tag(context_dir, dict(reversed(args.items())))


def test_the_serving_tag_is_its_own_and_moves_with_the_training_tag(context_dir):
    tag = image_tag(context_dir, CU126)

    assert serving_image_tag(tag) == f"{tag}-cpu"
    assert serving_image_tag(tag) != serving_image_tag(content_hash(context_dir))
    assert len(serving_image_tag(tag)) <= 128  # ECR's longest tag


def test_the_serving_images_build_args_change_both_tags(context_dir):
    """The CPU flavour's build args live in buildspec.yml, one of the hashed files."""
    (context_dir / "buildspec.yml").write_text("--build-arg ACCELERATOR=cpu\n")
    before = image_tag(context_dir, CU126)

    (context_dir / "buildspec.yml").write_text("--build-arg ACCELERATOR=cpu --build-arg X=1\n")

    after = image_tag(context_dir, CU126)
    assert after != before
    assert serving_image_tag(after) != serving_image_tag(before)

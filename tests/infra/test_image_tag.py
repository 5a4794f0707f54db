"""infra.image_tag: the training image's tag is a content hash of training_image/."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.image_tag import TAG_LENGTH, build_context_files, content_hash


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

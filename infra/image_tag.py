"""The training image's tag: a hash of the image's build context (training_image/) and of
the ``docker build --build-arg`` values it is built with; and the tag of the CPU serving image
the same build makes from the same context (:func:`serving_image_tag`).

The same tree and build args always give the same tag, so a deploy with neither changed asks
for no build, and the launcher is handed an exact, immutable image URI (repository:tag).
Pure Python: the CDK app and the local rehearsal compute it the same way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

IGNORED_DIRECTORIES = ("__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache")
IGNORED_SUFFIXES = (".pyc", ".pyo")
TAG_LENGTH = 16
SERVING_TAG_SUFFIX = "-cpu"
# One build pushes the training image and its CPU serving image (buildspec.yml): the repository's
# lifecycle rule counts images, so it keeps this many per build it keeps.
IMAGES_PER_BUILD = 2


def build_context_files(root: Path) -> list[Path]:
    """The files of the build context under ``root``, sorted, caches left out."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"the image's build context {root} is not a directory")
    files = []
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if any(part in IGNORED_DIRECTORIES for part in relative.parts):
            continue
        if path.suffix in IGNORED_SUFFIXES or not path.is_file():
            continue
        files.append(relative)
    return sorted(files, key=lambda item: item.as_posix())


def content_hash(root: Path) -> str:
    """A hex tag over every file's relative path and bytes (not times or modes)."""
    return _content_digest(root).hexdigest()[:TAG_LENGTH]


def image_tag(root: Path, build_args: Mapping[str, str]) -> str:
    """The tag of the image built from ``root`` with ``build_args`` (name -> value).

    An empty value leaves the Dockerfile's own ARG default in place, which for the args the
    stack passes is empty too, so it counts as not given: with no non-empty build arg the tag
    is ``content_hash(root)``, and any other value of an arg gives another tag.
    """
    digest = _content_digest(root)
    for name, value in sorted(build_args.items()):
        if value:
            digest.update(f"--build-arg {name}={value}".encode() + b"\0")
    return digest.hexdigest()[:TAG_LENGTH]


def serving_image_tag(tag: str) -> str:
    """The tag of the CPU serving image built alongside the training image ``tag``.

    buildspec.yml builds it from the same context with the Dockerfile's ACCELERATOR=cpu flavour;
    its build args are written in buildspec.yml, which ``tag`` hashes with every other file, so
    a change to either image's inputs changes both tags.
    """
    return f"{tag}{SERVING_TAG_SUFFIX}"


def _content_digest(root: Path) -> hashlib._Hash:
    digest = hashlib.sha256()
    for relative in build_context_files(root):
        digest.update(relative.as_posix().encode() + b"\0")
        data = (Path(root) / relative).read_bytes()
        digest.update(len(data).to_bytes(8, "big") + data)
    return digest

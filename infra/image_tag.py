"""The training image's tag: a content hash of the image's build context (training_image/).

The same tree always gives the same tag, so a deploy with an unchanged tree asks for no
build, and the launcher is handed an exact, immutable image URI (repository:tag).
Pure Python: the CDK app and the local rehearsal compute it the same way.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

IGNORED_DIRECTORIES = ("__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache")
IGNORED_SUFFIXES = (".pyc", ".pyo")
TAG_LENGTH = 16


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
    digest = hashlib.sha256()
    for relative in build_context_files(root):
        digest.update(relative.as_posix().encode() + b"\0")
        data = (Path(root) / relative).read_bytes()
        digest.update(len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()[:TAG_LENGTH]

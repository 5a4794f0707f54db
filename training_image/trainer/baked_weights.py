"""The pretrained weights baked into the image: what fetch_weights.py baked, and proof they load.

fetch_weights.py downloads each model/backbone's weights into the caches (TORCH_HOME: torchvision's
ImageNet backbones and effdet's COCO checkpoints; HF_HOME: anything timm fetches from the Hugging
Face hub), then writes a manifest (the file ``DETRAIN_WEIGHTS_MANIFEST`` names; the Dockerfile
sets /opt/weights/manifest.json): the pairs it baked and every file in the caches, with its size.
The self-check reads it back (:func:`check`): each file present at its size, and each pair built
again with ``pretrained=True`` while every network call is blocked, as SageMaker's network
isolation blocks it. Outside the image the variable is unset: nothing was baked.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

MANIFEST_VARIABLE = "DETRAIN_WEIGHTS_MANIFEST"
MANIFEST_FORMAT = 1


class WeightsMissing(Exception):
    """A baked weight file (or the manifest itself) is missing, cut short, or does not load."""


def manifest_path(environ=os.environ) -> Path | None:
    """Where the manifest is (None: not set, outside the image)."""
    value = environ.get(MANIFEST_VARIABLE)
    return Path(value) if value else None


def cache_roots(environ=os.environ) -> list[Path]:
    """The folders the weights land in: TORCH_HOME and HF_HOME (their defaults when unset)."""
    home = Path(environ.get("HOME") or Path.home())
    torch_home = environ.get("TORCH_HOME") or home / ".cache" / "torch"
    hf_home = environ.get("HF_HOME") or home / ".cache" / "huggingface"
    return [Path(torch_home), Path(hf_home)]


def cached_files(roots: Sequence[Path]) -> list[dict]:
    """Every file under ``roots``: absolute path and size in bytes."""
    return [
        {"path": str(path), "bytes": path.stat().st_size}
        for root in roots
        if root.is_dir()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    ]


def write_manifest(path: Path, pairs: Sequence[tuple[str, str]], roots: Sequence[Path]) -> dict:
    """Record what was baked: the model/backbone pairs and the files in the caches."""
    manifest = {
        "format": MANIFEST_FORMAT,
        "models": [f"{model}/{backbone}" for model, backbone in pairs],
        "files": cached_files(roots),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def read_manifest(path: Path) -> dict:
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise WeightsMissing(
            f"the weights manifest {path} is missing ({MANIFEST_VARIABLE} names it; "
            "fetch_weights.py writes it when the image is built)"
        ) from None
    except (OSError, ValueError) as error:
        raise WeightsMissing(f"the weights manifest {path} cannot be read: {error}") from None
    if manifest.get("format") != MANIFEST_FORMAT:
        raise WeightsMissing(
            f"the weights manifest {path} has format {manifest.get('format')!r}; "
            f"this trainer reads {MANIFEST_FORMAT}"
        )
    return manifest


def missing_files(manifest: dict) -> list[str]:
    """Each listed file that is absent or whose size differs from the baked one, explained."""
    problems = []
    for entry in manifest["files"]:
        path = Path(entry["path"])
        if not path.is_file():
            problems.append(f"baked weight file {path} is missing")
        elif path.stat().st_size != entry["bytes"]:
            problems.append(
                f"baked weight file {path} has {path.stat().st_size} bytes; "
                f"the build baked {entry['bytes']}"
            )
    return problems


def _no_network(*args, **kwargs):
    raise OSError("network access is blocked while checking the baked weights")


@contextmanager
def network_blocked() -> Iterator[None]:
    """Every socket connection fails inside (as under SageMaker's network isolation)."""
    saved = socket.socket.connect, socket.create_connection
    socket.socket.connect = _no_network  # type: ignore[method-assign]
    socket.create_connection = _no_network  # type: ignore[assignment]
    try:
        yield
    finally:
        socket.socket.connect, socket.create_connection = saved  # type: ignore[method-assign]


def build_each(pairs: Sequence[tuple[str, str]]) -> None:
    """Build each model/backbone with its pretrained weights (what a job with pretrained=true
    does); raises the trainer's ConfigError naming the pair when its weights are not there."""
    from contract.families import FAMILIES
    from trainer.model import build_module

    for model, backbone in pairs:
        size = FAMILIES[model].image_size_multiple * 4
        build_module(model, backbone, 2, size, pretrained=True)


def check(path: Path | None) -> str:
    """Prove the baked weights are there and load offline; the result in words.

    Raises WeightsMissing naming the first missing file, or the pair that does not load."""
    if path is None:
        return f"no weights baked ({MANIFEST_VARIABLE} is not set: not the built image)"
    manifest = read_manifest(path)
    problems = missing_files(manifest)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise WeightsMissing(problems[0] + more)
    pairs = [tuple(name.split("/", 1)) for name in manifest["models"]]
    if not pairs:
        return "no weights baked (PRETRAINED_WEIGHTS=none)"
    with network_blocked():
        try:
            build_each(pairs)
        except Exception as error:  # the trainer's ConfigError names the pair
            raise WeightsMissing(f"{type(error).__name__}: {error}") from None
    return (
        f"{len(pairs)} models load their baked weights offline "
        f"({len(manifest['files'])} files: {', '.join(manifest['models'])})"
    )

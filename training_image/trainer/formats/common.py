"""What every format reader returns, and the small helpers they share."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

EXAMPLES = 3
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class Annotations:
    """What a reader found, before classes are indexed and boxes validated.

    A width or height of 0 means "not stated": the shared validation reads it from the image.
    ``normalized`` boxes are fractions of the image size (YOLO); the shared validation turns
    them into pixels once the sizes are known.
    """

    source: Path
    files: list[str]  # relative to the channel
    widths: np.ndarray
    heights: np.ndarray
    box_image: np.ndarray  # (m,) row of each box's image
    boxes: np.ndarray  # (m, 4) xyxy
    box_class: np.ndarray  # (m,) index into class_names
    class_names: list[str]
    box_ids: list[str]  # (m,) how a message names each box: "annotation id 7", "a.xml object 2"
    normalized: bool = False


def examples(values: Sequence[object]) -> str:
    shown = ", ".join(str(v) for v in list(values)[:EXAMPLES])
    return shown + (", ..." if len(values) > EXAMPLES else "")


def visible(path: Path) -> bool:
    return not path.name.startswith(("_", "."))


def normalised(name: str) -> str:
    """``./images/x.jpg`` and ``images\\x.jpg`` (Windows exports) -> ``images/x.jpg``."""
    return posixpath.normpath(name.strip().replace("\\", "/"))


def channel_files(channel: Path) -> set[str]:
    """Every visible file under the channel, relative to it (``_`` and ``.`` names skipped)."""
    found = set()
    for folder, dirs, files in os.walk(channel):
        dirs[:] = [d for d in dirs if not d.startswith(("_", "."))]
        rel = os.path.relpath(folder, channel)
        prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        found.update(prefix + f for f in files if not f.startswith(("_", ".")))
    return found

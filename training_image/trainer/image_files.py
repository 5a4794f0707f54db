"""Checking a dataset's image files before training, without decoding them: present,
readable (the header, and the format's end marker in the last bytes, which an interrupted
upload lacks), and of the size the annotations state, read after the EXIF orientation.

A corruption these cannot see is found at the first decode (``trainer.dataset.ReadChecked``),
as a DataError naming the file.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np
import PIL.Image

from trainer.errors import DataError
from trainer.formats.common import EXAMPLES
from trainer.formats.common import Annotations as _Annotations
from trainer.formats.common import examples as _examples

log = logging.getLogger(__name__)

ROTATING_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that swap width and height
# What Pillow raises for a file that is not a readable image (also at a full decode).
DECODE_ERRORS = (OSError, ValueError, SyntaxError, PIL.Image.DecompressionBombError)


class _Header(NamedTuple):
    size: tuple[int, int]  # as displayed: after the EXIF orientation
    stored: tuple[int, int]  # as the pixels are stored
    orientation: int


# Where a complete file of the format ends; an interrupted upload keeps its header but not this.
_END_MARKERS = {"JPEG": b"\xff\xd9", "PNG": b"IEND\xaeB`\x82", "GIF": b";"}
_TAIL_BYTES = 4096  # some cameras write a trailer after the JPEG's end marker


def _orientation(image: PIL.Image.Image) -> int:
    if image.format == "PNG":  # Pillow's PNG getexif() decodes the whole image: read the chunk
        exif = PIL.Image.Exif()
        if "exif" in image.info:
            exif.load(image.info["exif"])
    else:
        exif = image.getexif()
    return int(exif.get(0x0112) or 1)


def _header(path: str) -> _Header | None:
    """The header, and a cheap completeness check (the end marker); None if not readable."""
    try:
        with PIL.Image.open(path) as image:
            stored = image.size
            orientation = _orientation(image)
            marker = _END_MARKERS.get(image.format or "")
        if marker:
            with open(path, "rb") as file:
                file.seek(max(0, file.seek(0, os.SEEK_END) - _TAIL_BYTES))
                if marker not in file.read():
                    return None
    except DECODE_ERRORS:
        return None
    size = stored[::-1] if orientation in ROTATING_ORIENTATIONS else stored
    return _Header(size, stored, orientation)


def _without(found: _Annotations, rows: list[int]) -> _Annotations:
    keep = np.ones(len(found.files), dtype=bool)
    keep[rows] = False
    new_row = np.cumsum(keep) - 1
    box_keep = keep[found.box_image]
    return _Annotations(
        source=found.source,
        files=[f for f, k in zip(found.files, keep, strict=True) if k],
        widths=found.widths[keep],
        heights=found.heights[keep],
        box_image=new_row[found.box_image[box_keep]],
        boxes=found.boxes[box_keep],
        box_class=found.box_class[box_keep],
        class_names=found.class_names,
        box_ids=[b for b, k in zip(found.box_ids, box_keep, strict=True) if k],
    )


def _size_problem(found: _Annotations, i: int, header: _Header) -> str:
    stated = f"{found.widths[i]}x{found.heights[i]}"
    size = f"{header.size[0]}x{header.size[1]}"
    shown = f"{found.files[i]}: the annotation says {stated}, the image shows {size}"
    if header.orientation not in ROTATING_ORIENTATIONS:
        return shown
    stored = f"{header.stored[0]}x{header.stored[1]}"
    hint = (
        "the annotation matches the stored pixels, so the tool that wrote it ignored the "
        "orientation; the trainer applies it, as viewers do"
        if stored == stated
        else "sizes are read after applying it"
    )
    return f"{shown} (stored {stored}, turned by its EXIF orientation {header.orientation}; {hint})"


def check_images(
    found: _Annotations, paths: np.ndarray, files_present: set[str], max_bad_images: int
) -> _Annotations:
    """Every image present and readable (header and end marker), its size the stated one."""
    missing = [f for f in found.files if f not in files_present]
    if missing:
        raise DataError(
            f"{len(missing)} of {len(found.files)} images named in {found.source.name} "
            "are missing, "
            f"e.g. {_examples(missing)}"
        )
    with ThreadPoolExecutor(max_workers=8) as pool:
        headers = list(pool.map(_header, paths, chunksize=64))
    unreadable = [i for i, header in enumerate(headers) if header is None]
    if len(unreadable) > max_bad_images:
        raise DataError(
            f"{len(unreadable)} of {len(headers)} images are not readable images "
            "(not an image, or truncated), "
            f"e.g. {_examples([found.files[i] for i in unreadable])}; "
            f"max_bad_images = {max_bad_images} allows skipping that many"
        )
    if unreadable:
        log.warning(
            "skipping %d unreadable images (max_bad_images = %d): %s",
            len(unreadable),
            max_bad_images,
            ", ".join(found.files[i] for i in unreadable),
        )
        found = _without(found, unreadable)
        headers = [h for h in headers if h is not None]
    actual = np.array([h.size for h in headers], dtype=np.int64).reshape(-1, 2)
    unstated = (found.widths <= 0) | (found.heights <= 0)
    found.widths[unstated], found.heights[unstated] = actual[unstated, 0], actual[unstated, 1]
    wrong = np.flatnonzero((actual[:, 0] != found.widths) | (actual[:, 1] != found.heights))
    if len(wrong):
        shown = [_size_problem(found, i, headers[i]) for i in wrong[:EXAMPLES]]
        raise DataError(
            f"{len(wrong)} images differ in size from {found.source.name}, e.g. {'; '.join(shown)}"
        )
    return found


def read_sizes(found: _Annotations, paths: np.ndarray) -> _Annotations:
    """Sizes the annotations do not state, from the image headers (read in parallel)."""
    rows = np.flatnonzero((found.widths <= 0) | (found.heights <= 0))
    if len(rows):
        with ThreadPoolExecutor(max_workers=8) as pool:
            headers = list(pool.map(_header, paths[rows], chunksize=64))
        unreadable = [found.files[r] for r, h in zip(rows, headers, strict=True) if h is None]
        if unreadable:
            raise DataError(
                f"{len(unreadable)} images are not readable images, e.g. {_examples(unreadable)}"
            )
        found.widths[rows] = [h.size[0] for h in headers]
        found.heights[rows] = [h.size[1] for h in headers]
    return found

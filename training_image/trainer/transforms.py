"""Flip, resize and pad in numpy and OpenCV: the ``light`` augmentation and validation, the same
pixels and boxes as the albumentations steps they replace (IceVision's ``resize_and_pad``, with
``HorizontalFlip(p=0.5)`` first to train), without a record object or a Compose per image.

- resize: the longest side to ``size`` with ``cv2.INTER_LINEAR`` (albumentations'
  ``LongestMaxSize``: sides ``round(side * size / longest)``), written straight into
- pad: a ``size`` x ``size`` canvas of ``PAD_VALUE``, the image centred (``PadIfNeeded``);
- flip: ``cv2.flip`` before the resize, as albumentations did;
- boxes: one numpy expression for all of an image's boxes, clipped to the canvas; a box left
  without area is dropped with its label (albumentations' ``filter_bboxes``).

``decide_flip`` draws from Python's ``random`` exactly what the albumentations Compose drew (one
number for the Compose, one per step; the flip is the second), so a seed gives the same flips,
and the same batches, as before (tests/trainer/test_transforms.py).
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

PAD_VALUE = (124, 116, 104)  # IceVision's resize_and_pad fill
FLIP_PROBABILITY = 0.5


@dataclass
class Sample:
    """One image as the collate takes it: ``pixels`` a (size, size, 3) uint8 array (or, for the
    device decode, the file's bytes still to decode), boxes xyxy in those pixels, class ids."""

    record_id: int
    pixels: Any
    boxes: np.ndarray  # (n, 4) float32
    labels: np.ndarray  # (n,) int64


def decide_flip(train: bool) -> bool:
    """Whether to flip this image, drawn as albumentations drew it (Compose, flip, resize, pad;
    validation draws no flip)."""
    random.random()  # the Compose's own p
    flip = train and random.random() < FLIP_PROBABILITY
    random.random()  # LongestMaxSize
    random.random()  # PadIfNeeded
    return flip


def resized_size(width: int, height: int, size: int) -> tuple[int, int]:
    """(width, height) with the longest side scaled to ``size`` (LongestMaxSize's rounding)."""
    scale = size / float(max(width, height))
    if scale == 1.0:
        return width, height
    return round(width * scale), round(height * scale)


def offsets(width: int, height: int, size: int) -> tuple[int, int]:
    """(left, top) of a resized ``width`` x ``height`` image centred on the canvas."""
    return (size - width) // 2, (size - height) // 2


@functools.cache
def _padding(size: int) -> np.ndarray:
    padding = np.empty((size, size, 3), dtype=np.uint8)
    padding[...] = PAD_VALUE
    padding.flags.writeable = False
    return padding


def resize_and_pad(pixels: np.ndarray, size: int, *, flip: bool) -> np.ndarray:
    """(H, W, 3) uint8 -> (size, size, 3) uint8: flipped, resized, centred on ``PAD_VALUE``."""
    height, width = pixels.shape[:2]
    new_width, new_height = resized_size(width, height, size)
    left, top = offsets(new_width, new_height, size)
    canvas = np.empty((size, size, 3), dtype=np.uint8)
    padding = _padding(size)  # only the margins are written twice: a memcpy, not a broadcast
    bottom, right = top + new_height, left + new_width
    canvas[:top], canvas[bottom:] = padding[:top], padding[bottom:]
    canvas[top:bottom, :left], canvas[top:bottom, right:] = (
        padding[:new_height, :left],
        padding[:new_height, right:],
    )
    if flip:
        pixels = cv2.flip(pixels, 1)
    window = canvas[top:bottom, left:right]
    if (new_width, new_height) == (width, height):
        window[...] = pixels
    else:
        cv2.resize(pixels, (new_width, new_height), dst=window, interpolation=cv2.INTER_LINEAR)
    return canvas


def transform_boxes(
    boxes: np.ndarray, width: int, height: int, size: int, *, flip: bool
) -> tuple[np.ndarray, np.ndarray]:
    """xyxy boxes of a ``width`` x ``height`` image -> (boxes on the canvas, which were kept)."""
    new_width, new_height = resized_size(width, height, size)
    left, top = offsets(new_width, new_height, size)
    unit = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) / (width, height, width, height)
    if flip:
        unit = np.stack([1 - unit[:, 2], unit[:, 1], 1 - unit[:, 0], unit[:, 3]], axis=1)
    placed = np.clip(
        unit * (new_width, new_height, new_width, new_height) + (left, top) * 2, 0, size
    )
    keep = (placed[:, 2] > placed[:, 0]) & (placed[:, 3] > placed[:, 1])
    return placed[keep].astype(np.float32), keep


def sample(
    record_id: int,
    pixels: np.ndarray,
    boxes: np.ndarray,
    labels: np.ndarray,
    size: int,
    *,
    flip: bool,
) -> Sample:
    """A decoded image and its annotations, flipped, resized and padded."""
    height, width = pixels.shape[:2]
    placed, keep = transform_boxes(boxes, width, height, size, flip=flip)
    resized = resize_and_pad(pixels, size, flip=flip)
    return Sample(record_id, resized, placed, np.asarray(labels, dtype=np.int64)[keep])

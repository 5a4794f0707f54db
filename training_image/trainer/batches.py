"""Batches as each model family takes them, with the pixels normalized on the training device.

DataLoader workers hand over uint8 pixels, one ``(batch, height, width, 3)`` tensor: a quarter
of float32's bytes through the worker queue, pinned memory and the host-to-device copy, and no
per-pixel float work on the CPU. ``to_device`` copies the batch (``non_blocking``) and
normalizes it there with albumentations' ``Normalize`` arithmetic (float32: subtract
``255 * mean``, multiply by ``1 / (255 * std)``), so the model sees the same numbers, to the bit,
as when the workers normalized (tests/trainer/test_batches.py). The images leave as NCHW
(``channels_last`` on request: the NHWC pixels already are that layout).

With the decode on the device (``trainer.device_decode``), a batch's pixels are the JPEG files'
bytes (``EncodedBatch``), decoded, flipped, resized and padded by ``to_device`` on the device.

Targets and the images' form are each family's (trainer/families/): EfficientDet's
``dict(bbox=[yxyx], cls=[...])`` and one tensor, torchvision's list of
``dict(boxes=xyxy, labels=...)`` and a list of images.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from trainer import device_decode, families
from trainer.device_decode import EncodedBatch, EncodedJpeg
from trainer.transforms import Sample

MEAN = (0.485, 0.456, 0.406)  # albumentations' Normalize defaults (ImageNet)
STD = (0.229, 0.224, 0.225)
MAX_PIXEL_VALUE = 255.0


def _normalizer() -> tuple[torch.Tensor, torch.Tensor]:
    mean = np.array(MEAN, dtype=np.float32) * np.float32(MAX_PIXEL_VALUE)
    scale = np.reciprocal(np.array(STD, dtype=np.float32) * np.float32(MAX_PIXEL_VALUE))
    return torch.from_numpy(mean), torch.from_numpy(scale)


def _pixels(samples: Sequence[Sample]) -> torch.Tensor | EncodedBatch:
    if any(isinstance(s.pixels, EncodedJpeg) for s in samples):
        return EncodedBatch([s.pixels for s in samples])
    return torch.from_numpy(np.stack([s.pixels for s in samples]))


class Collate:
    """Samples -> ((uint8 pixels, targets), samples), the samples' pixels dropped. The pixels are
    one (B, H, W, 3) tensor, or an ``EncodedBatch`` to decode on the device (``to_device``)."""

    def __init__(self, family: str, *, train: bool) -> None:
        families.get(family)  # UnknownFamily (a ValueError) naming the known ones
        self.family, self.train = family, train

    def __call__(self, samples: Sequence[Sample]) -> tuple[tuple[Any, Any], Sequence[Sample]]:
        batch = (_pixels(samples), families.get(self.family).targets(samples, train=self.train))
        for sample in samples:
            sample.pixels = None
        return batch, samples


def loader(dataset, family: str, *, train: bool, **options) -> DataLoader:
    """A DataLoader of uint8 batches for ``family`` (options: DataLoader's own)."""
    return DataLoader(dataset, collate_fn=Collate(family, train=train), **options)


def _move(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=True)
    if isinstance(value, dict):
        return {k: _move(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_move(v, device) for v in value)
    return value


def normalize(pixels: torch.Tensor, *, channels_last: bool = False) -> torch.Tensor:
    """uint8 (B, H, W, 3) -> float32 (B, 3, H, W), albumentations' Normalize to the bit."""
    mean, scale = (t.to(pixels.device) for t in _normalizer())
    images = (pixels.float() - mean).mul_(scale).permute(0, 3, 1, 2)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    return images.contiguous(memory_format=memory_format)


def to_device(
    batch: tuple[torch.Tensor, Any], device: torch.device, family: str, *, channels_last=False
) -> tuple[Any, Any]:
    """A collated batch on ``device``, images normalized, in the family's input form."""
    pixels, targets = batch
    if isinstance(pixels, EncodedBatch):
        pixels = device_decode.decode(pixels, device)
    images = normalize(pixels.to(device, non_blocking=True), channels_last=channels_last)
    return families.get(family).inputs(images), _move(targets, device)

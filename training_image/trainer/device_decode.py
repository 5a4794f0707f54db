"""Decode on the training device: the DataLoader's workers read each JPEG's bytes and transform
its boxes; ``decode`` (in the training process, from ``batches.to_device``) decodes a whole
batch with ``torchvision.io.decode_jpeg(list, device=...)`` (nvjpeg on a GPU, libjpeg-turbo on
the CPU), then flips, resizes and pads each image there with torch ops.

One set of decoding rules: only files ``images.is_plain_jpeg`` accepts (RGB or grayscale JPEG,
no EXIF rotation) are left encoded. Anything else (PNG, palette, 16-bit, CMYK JPEG, rotated
photos) is decoded in the worker by ``images.read_rgb`` and transformed there, as on the CPU
path, and travels as pixels in the same batch.

The resize is bilinear, half-pixel centred, without antialiasing: the same interpolation as
OpenCV's ``INTER_LINEAR`` on the CPU path, in float32 instead of OpenCV's 11-bit fixed point,
so a pixel can differ by one level; a different JPEG decoder (nvjpeg) can differ by a few more
(tests/trainer/test_device_decode.py bounds both on the CPU decoder).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from contract.hyperparameters import Hyperparameters
from trainer import images, transforms
from trainer.errors import ConfigError, DataError

# auto: decode on the GPU when each GPU has fewer vCPUs than this (ml.g5.xlarge: 4).
# A first guess, to be measured on a GPU (docs/performance.md).
DEVICE_BELOW_VCPUS_PER_GPU = 8


@dataclass
class EncodedJpeg:
    """A JPEG file's bytes and what to do with them once decoded."""

    data: np.ndarray  # uint8, the whole file
    path: str
    flip: bool
    size: int  # the canvas side


@dataclass
class EncodedBatch:
    """A batch's pixels before decoding: ``EncodedJpeg``s, and (size, size, 3) uint8 arrays
    for the images the workers decoded."""

    items: list


class Encoded:
    """A dataset's loader (``dataset.Resized``) that leaves plain JPEGs encoded."""

    def __init__(self, resized) -> None:
        self.resized = resized

    def __call__(self, row: int) -> transforms.Sample:
        r = self.resized
        path = r.table.paths[row]
        with Image.open(path) as image:  # the header only
            plain, (width, height) = images.is_plain_jpeg(image), image.size
        if not plain:
            return r(row)
        flip = transforms.decide_flip(r.flip)
        boxes, labels = r.table.annotations(row)
        placed, keep = transforms.transform_boxes(boxes, width, height, r.image_size, flip=flip)
        data = np.fromfile(path, dtype=np.uint8)
        encoded = EncodedJpeg(data, path, flip, r.image_size)
        return transforms.Sample(row, encoded, placed, np.asarray(labels, np.int64)[keep])


def choose(hp: Hyperparameters, device: torch.device, vcpus_per_gpu: int) -> tuple[bool, str]:
    """(decode on the device?, why) for the ``decode_on`` hyperparameter (one of the contract's
    ``DECODE_ON``: ``Hyperparameters`` refuses any other)."""
    requested, augmentation, max_bad_images = hp.decode_on, hp.augmentation, hp.max_bad_images
    conflict = (
        f"augmentation={augmentation} (its steps run on decoded pixels in the workers)"
        if augmentation == "standard"
        else f"max_bad_images={max_bad_images} (skipping happens in the workers)"
        if max_bad_images
        else ""
    )
    if requested == "device" and conflict:
        raise ConfigError(f"decode_on=device does not go with {conflict}; use decode_on=cpu")
    if requested != "auto":
        return requested == "device", f"decode_on={requested}"
    if conflict:
        return False, f"decode_on=auto with {conflict}: the workers decode"
    if device.type != "cuda":
        return False, f"decode_on=auto on {device.type}: the workers decode"
    if vcpus_per_gpu < DEVICE_BELOW_VCPUS_PER_GPU:
        return True, (
            f"decode_on=auto: {vcpus_per_gpu} vCPUs per GPU "
            f"(< {DEVICE_BELOW_VCPUS_PER_GPU}): the GPU decodes"
        )
    return False, (
        f"decode_on=auto: {vcpus_per_gpu} vCPUs per GPU "
        f"(>= {DEVICE_BELOW_VCPUS_PER_GPU}): the workers decode"
    )


def decode(batch: EncodedBatch, device: torch.device) -> torch.Tensor:
    """The batch as (B, size, size, 3) uint8 on ``device``: the CPU path's layout."""
    jpegs = [(i, item) for i, item in enumerate(batch.items) if isinstance(item, EncodedJpeg)]
    size = jpegs[0][1].size
    pixels = torch.empty((len(batch.items), size, size, 3), dtype=torch.uint8, device=device)
    pixels[...] = torch.tensor(transforms.PAD_VALUE, dtype=torch.uint8, device=device)
    for (i, item), image in zip(
        jpegs, _decode_all([item for _, item in jpegs], device), strict=True
    ):
        _place(pixels[i], image, flip=item.flip)
    for i, item in enumerate(batch.items):
        if not isinstance(item, EncodedJpeg):
            pixels[i] = torch.from_numpy(item).to(device, non_blocking=True)
    return pixels


def _decode_all(jpegs: list[EncodedJpeg], device: torch.device) -> list[torch.Tensor]:
    from torchvision.io import ImageReadMode, decode_jpeg

    data = [torch.from_numpy(item.data) for item in jpegs]
    try:
        return decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
    except RuntimeError:  # one bad file fails the whole batch: find it
        pass
    decoded = []
    for item, one in zip(jpegs, data, strict=True):
        try:
            decoded.append(decode_jpeg(one, mode=ImageReadMode.RGB, device=device))
        except RuntimeError as error:
            raise DataError(
                f"image {item.path} cannot be decoded ({error}); it is corrupt or truncated. "
                "Replace or remove it, or set decode_on=cpu and max_bad_images to skip it"
            ) from None
    return decoded


def _place(canvas: torch.Tensor, image: torch.Tensor, *, flip: bool) -> None:
    """A decoded (3, H, W) image flipped, resized and centred into ``canvas`` (S, S, 3)."""
    height, width = image.shape[1:]
    size = canvas.shape[0]
    new_width, new_height = transforms.resized_size(width, height, size)
    left, top = transforms.offsets(new_width, new_height, size)
    if flip:
        image = image.flip(-1)
    if (new_width, new_height) != (width, height):
        image = torch.nn.functional.interpolate(
            image[None].float(),
            size=(new_height, new_width),
            mode="bilinear",
            align_corners=False,
            antialias=False,
        )[0]
        image = image.round_().clamp_(0, 255).to(torch.uint8)
    canvas[top : top + new_height, left : left + new_width] = image.permute(1, 2, 0)

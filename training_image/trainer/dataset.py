"""The torch dataset: a table's rows decoded (``trainer.images``) and transformed in the
DataLoader's workers, as ``transforms.Sample``s.

``light`` and ``none`` (and validation) go through ``trainer.transforms`` (numpy and OpenCV);
``standard`` through IceVision's records and its albumentations ``aug_tfms``. With the decode on
the device (``trainer.device_decode``), plain JPEGs leave the workers as bytes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np

from trainer import icevision_patches, images, transforms
from trainer.errors import DataError
from trainer.image_files import DECODE_ERRORS
from trainer.tables import DetectionTable

log = logging.getLogger(__name__)


class Records(Sequence):
    """IceVision records over a table, built on access (in the DataLoader's workers)."""

    def __init__(self, table: DetectionTable) -> None:
        icevision_patches.apply()
        from icevision.core.class_map import ClassMap

        self.table = table
        self.class_map = ClassMap(list(table.class_names))

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, i: int):
        icevision_patches.apply()  # no-op when already applied; a spawned worker starts clean
        from icevision.core.bbox import BBox
        from icevision.core.record_defaults import ObjectDetectionRecord
        from icevision.utils.imageio import ImgSize

        boxes, labels = self.table.annotations(i)
        record = ObjectDetectionRecord()
        record.set_record_id(i)
        record.set_filepath(self.table.paths[i])
        record.set_img_size(
            ImgSize(int(self.table.widths[i]), int(self.table.heights[i])), original=True
        )
        record.detection.set_class_map(self.class_map)
        record.detection.add_labels_by_id(labels.tolist())
        record.detection.add_bboxes([BBox.from_xyxy(*box) for box in boxes.tolist()])
        return record


class Resized:
    """``light``, ``none`` and validation: decode, flip (to train, with ``light``), resize, pad."""

    def __init__(self, table: DetectionTable, image_size: int, *, flip: bool) -> None:
        self.table, self.image_size, self.flip = table, image_size, flip

    def __call__(self, row: int) -> transforms.Sample:
        pixels = images.read_rgb_array(self.table.paths[row])
        flip = transforms.decide_flip(self.flip)
        boxes, labels = self.table.annotations(row)
        return transforms.sample(row, pixels, boxes, labels, self.image_size, flip=flip)


class Augmented:
    """``standard``: IceVision's ``aug_tfms`` on an IceVision record, through its adapter."""

    def __init__(self, table: DetectionTable, image_size: int) -> None:
        icevision_patches.apply()
        from icevision import tfms

        self.records = Records(table)
        self.adapter = tfms.A.Adapter([*tfms.A.aug_tfms(image_size)])

    def __call__(self, row: int) -> transforms.Sample:
        record = self.records[row]
        record.set_img(images.read_rgb(self.records.table.paths[row]))
        record = self.adapter(record)
        boxes = np.array([b.xyxy for b in record.detection.bboxes], dtype=np.float32)
        labels = np.array(record.detection.label_ids, dtype=np.int64)
        return transforms.Sample(row, np.asarray(record.img), boxes.reshape(-1, 4), labels)


class ReadChecked(Sequence):
    """Rows as ``transforms.Sample``s (``load``), where one that fails to decode is a DataError
    naming the file.

    The header check in ``tables.load`` cannot see every corruption (a full decode of a million
    images is too slow), so the first full decode is checked here. Up to ``max_bad_images``
    such images are skipped (the next image is used instead, and the file is logged); the
    count is kept per process (each DataLoader worker counts its own).
    """

    def __init__(
        self,
        table: DetectionTable,
        load: Callable[[int], transforms.Sample],
        max_bad_images: int = 0,
    ) -> None:
        self.table, self.load, self.max_bad_images = table, load, max_bad_images
        self.skipped: set[str] = set()

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, i: int) -> transforms.Sample:
        for attempt in range(len(self)):
            row = (i + attempt) % len(self)
            try:
                return self.load(row)
            except DECODE_ERRORS as error:
                self._skip(self.table.paths[row], error)
        raise DataError(f"none of the {len(self)} images could be decoded")

    def _skip(self, path: str, error: Exception) -> None:
        self.skipped.add(path)
        if len(self.skipped) > self.max_bad_images:
            raise DataError(
                f"image {path} cannot be decoded ({error}); it is corrupt or truncated. "
                f"Replace or remove it, or set max_bad_images (now {self.max_bad_images}) "
                "to skip that many unreadable images"
            ) from None
        log.warning(
            "skipping unreadable image %s (%s); %d of max_bad_images = %d skipped",
            path,
            error,
            len(self.skipped),
            self.max_bad_images,
        )


def build(
    table: DetectionTable,
    image_size: int,
    *,
    train: bool,
    augmentation: str = "light",
    max_bad_images: int = 0,
    decode_on_device: bool = False,
) -> ReadChecked:
    """Rows as uint8 images: resize the longest side, pad to a square; to train,
    ``augmentation``: ``light`` flips, ``standard`` is IceVision's aug_tfms, ``none``.
    ``decode_on_device``: plain JPEGs stay encoded (``trainer.device_decode``; not with
    ``standard``, whose steps run on decoded pixels).

    The pixels are normalized on the training device (trainer.batches), not in the workers.
    """
    if train and augmentation == "standard":
        return ReadChecked(table, Augmented(table, image_size), max_bad_images)
    resized = Resized(table, image_size, flip=train and augmentation == "light")
    if decode_on_device:
        from trainer.device_decode import Encoded

        return ReadChecked(table, Encoded(resized), max_bad_images)
    return ReadChecked(table, resized, max_bad_images)

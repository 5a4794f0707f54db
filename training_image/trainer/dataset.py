"""The torch dataset: a table's rows as IceVision records, decoded (``trainer.images``
through IceVision's patched ``open_img``) and transformed in the DataLoader's workers.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from trainer import icevision_patches
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


class ReadChecked(Sequence):
    """Records as transformed uint8 images, where one that fails to decode is a DataError naming
    the file. (IceVision's Dataset without its deep copy of each record: Records builds a fresh
    one.)

    The header check in ``tables.load`` cannot see every corruption (a full decode of a million
    images is too slow), so the first full decode is checked here. Up to ``max_bad_images``
    such images are skipped (the next image is used instead, and the file is logged); the
    count is kept per process (each DataLoader worker counts its own).
    """

    def __init__(self, records: Records, tfm, max_bad_images: int = 0) -> None:
        self.records, self.tfm, self.max_bad_images = records, tfm, max_bad_images
        self.skipped: set[str] = set()

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int):
        for attempt in range(len(self)):
            row = (i + attempt) % len(self)
            record = self.records[row]
            try:
                record.reduce_on_components("_load")  # decode the image
            except DECODE_ERRORS as error:
                self._skip(self.records.table.paths[row], error)
                continue
            return self.tfm(record)
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
):
    """Records as uint8 images: resize the longest side, pad to a square; to train,
    ``augmentation``: ``light`` flips, ``standard`` is IceVision's aug_tfms, ``none``.

    The pixels are normalized on the training device (trainer.batches), not in the workers.
    """
    icevision_patches.apply()
    from icevision import tfms

    steps = [*tfms.A.resize_and_pad(image_size)]
    if train and augmentation == "standard":
        steps = [*tfms.A.aug_tfms(image_size)]
    elif train and augmentation == "light":
        steps.insert(0, tfms.A.HorizontalFlip(p=0.5))
    return ReadChecked(Records(table), tfms.A.Adapter(steps), max_bad_images)

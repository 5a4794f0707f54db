"""Detection datasets from a channel, in any format of ``trainer.formats``, read column-wise
and validated by one shared check.

Formats (recognised from the channel's top; names starting with ``_`` or ``.`` are ignored,
so an upload marker such as ``_launch.json`` never counts, except Roboflow's
``_annotations.coco.json``): COCO, Pascal VOC, YOLO (Ultralytics ``data.yaml``) and SageMaker
Ground Truth output manifests; docs/datasets.md shows each layout. ``load_splits`` also reads
a dataset whose ``train/`` and ``valid/`` (or ``val/``) folders, or whose root (``data.yaml``'s
train and val, ``instances_train.json`` and ``instances_val.json``), hold both splits.

Annotations become one ``DetectionTable`` (flat numpy columns, no per-image
objects); IceVision records are built lazily, one per item, when a batch needs it.
Image sizes come from the annotations; an image is only opened here to confirm
that it is readable (its header, and the format's end marker in its last bytes) and,
where the annotation omits it (always in YOLO), its size. A corruption those cannot see is
found at the first decode (``ReadChecked``), as a DataError naming the file.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import PIL.Image

from trainer import compat
from trainer.errors import DataError
from trainer.formats import FORMATS
from trainer.formats.common import EXAMPLES
from trainer.formats.common import Annotations as _Annotations
from trainer.formats.common import channel_files as _channel_files
from trainer.formats.common import examples as _examples

log = logging.getLogger(__name__)

BOX_TOLERANCE_PX = 1.0
RESERVED_CLASS = "background"
ROTATING_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that swap width and height
TRAIN_FOLDERS = ("train",)
VALID_FOLDERS = ("valid", "val", "validation")


@dataclass(frozen=True)
class DetectionTable:
    """A detection dataset as columns. Boxes of image ``i`` are rows ``offsets[i]:offsets[i+1]``."""

    paths: np.ndarray  # (n,) object: absolute image paths
    widths: np.ndarray  # (n,) int64
    heights: np.ndarray  # (n,) int64
    offsets: np.ndarray  # (n + 1,) int64
    boxes: np.ndarray  # (m, 4) float32, xmin ymin xmax ymax in pixels
    labels: np.ndarray  # (m,) int64, 1-based index into class_names (0 is background)
    class_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def num_boxes(self) -> int:
        return len(self.boxes)

    def annotations(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        start, end = self.offsets[i], self.offsets[i + 1]
        return self.boxes[start:end], self.labels[start:end]

    def subset(self, indices: np.ndarray) -> DetectionTable:
        indices = np.asarray(indices, dtype=np.int64)
        counts = np.diff(self.offsets)[indices]
        starts = self.offsets[indices]
        rows = np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
        return DetectionTable(
            paths=self.paths[indices],
            widths=self.widths[indices],
            heights=self.heights[indices],
            offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            boxes=self.boxes[rows],
            labels=self.labels[rows],
            class_names=self.class_names,
        )


# ---- recognising the format, validation, assembly


def _find_format(channel: Path, split: str | None = None):
    """The one format whose layout is at the channel's top, and what it found there."""
    found = [(fmt, where) for fmt in FORMATS if (where := fmt.find(channel, split)) is not None]
    if len(found) > 1:
        shown = " and ".join(fmt.describe(where, channel) for fmt, where in found)
        raise DataError(
            f"channel {channel.name!r} holds both {shown} annotations; allowed: one layout "
            "per channel (remove one, or rename it with a leading '_' so it is ignored)"
        )
    if not found:
        entries = sorted(p.name for p in channel.iterdir() if not p.name.startswith((".", "_")))
        accepted = " nor ".join(fmt.LAYOUT for fmt in FORMATS)
        raise DataError(
            f"channel {channel.name!r} holds neither {accepted}, nor train/ and valid/ folders "
            f"holding one of them; found: {_examples(entries) or 'nothing'}"
        )
    return found[0]


def _class_labels(
    found: _Annotations, known: tuple[str, ...] | None
) -> tuple[np.ndarray, tuple[str, ...]]:
    names = found.class_names
    if not names:
        raise DataError(f"{found.source.name} declares no classes")
    empty = [i for i, n in enumerate(names) if not n]
    if empty:
        raise DataError(f"{found.source.name}: {len(empty)} classes have an empty name")
    if RESERVED_CLASS in names:
        raise DataError(
            f"{found.source.name}: the class name {RESERVED_CLASS!r} is reserved (index 0)"
        )
    if len(set(names)) != len(names):
        raise DataError(f"{found.source.name}: duplicate class names in {_examples(names)}")
    if known is None:
        return found.box_class + 1, tuple(names)
    position = {name: i + 1 for i, name in enumerate(known)}
    used = sorted({names[i] for i in np.unique(found.box_class)})
    unknown = [n for n in used if n not in position]
    if unknown:
        raise DataError(
            f"{found.source.name}: classes {_examples(unknown)} are not in the training data; "
            f"allowed: {_examples(known)}"
        )
    remap = np.array([position.get(n, 0) for n in names], dtype=np.int64)
    return remap[found.box_class], known


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
    except (OSError, ValueError, SyntaxError, PIL.Image.DecompressionBombError):
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


def _check_images(
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


def _checked_boxes(found: _Annotations) -> np.ndarray:
    """Each box on its own: finite, with an area, inside its image (clipped within 1 px)."""
    boxes = found.boxes
    width = found.widths[found.box_image].astype(np.float64)
    height = found.heights[found.box_image].astype(np.float64)
    finite = np.isfinite(boxes).all(axis=1)
    degenerate = finite & ((boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1]))
    outside = finite & (
        (boxes[:, 0] < -BOX_TOLERANCE_PX)
        | (boxes[:, 1] < -BOX_TOLERANCE_PX)
        | (boxes[:, 2] > width + BOX_TOLERANCE_PX)
        | (boxes[:, 3] > height + BOX_TOLERANCE_PX)
    )
    for problem, mask in (
        ("have a coordinate that is not a finite number (NaN or infinity)", ~finite),
        ("have no area (xmax <= xmin or ymax <= ymin)", degenerate),
        (f"lie outside their image by more than {BOX_TOLERANCE_PX:g} px", outside),
    ):
        if mask.any():
            shown = [
                f"{found.files[found.box_image[i]]} {found.box_ids[i]}: box (xyxy) "
                f"{np.round(boxes[i], 1).tolist()} in "
                f"{found.widths[found.box_image[i]]}x{found.heights[found.box_image[i]]}"
                for i in np.flatnonzero(mask)[:EXAMPLES]
            ]
            raise DataError(
                f"{mask.sum()} of {len(boxes)} boxes in {found.source.name} {problem}, "
                f"e.g. {'; '.join(shown)}"
            )
    clipped = np.empty_like(boxes, dtype=np.float32)
    np.clip(boxes[:, 0], 0, width, out=clipped[:, 0], casting="unsafe")
    np.clip(boxes[:, 1], 0, height, out=clipped[:, 1], casting="unsafe")
    np.clip(boxes[:, 2], 0, width, out=clipped[:, 2], casting="unsafe")
    np.clip(boxes[:, 3], 0, height, out=clipped[:, 3], casting="unsafe")
    return clipped


def _read_sizes(found: _Annotations, paths: np.ndarray) -> _Annotations:
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


def _in_pixels(found: _Annotations) -> _Annotations:
    if not found.normalized:
        return found
    scale = np.stack([found.widths, found.heights, found.widths, found.heights], axis=1)
    boxes = found.boxes * scale[found.box_image]
    return dataclasses.replace(found, boxes=boxes, normalized=False)


def load(
    channel: Path,
    class_names: tuple[str, ...] | None = None,
    *,
    check_images: bool = True,
    max_bad_images: int = 0,
    split: str | None = None,
) -> DetectionTable:
    """A channel's dataset, validated: every image present and readable, every box inside it.

    ``class_names`` (from the training channel) fixes the classes of a validation channel.
    ``split`` ("train" or "val") picks a split the channel's root declares (a YOLO
    ``data.yaml``'s entries, ``instances_train.json``/``instances_val.json``).
    Up to ``max_bad_images`` unreadable images are dropped (and listed in the log).
    Raises DataError with counts and examples.
    """
    if not channel.is_dir():
        raise DataError(f"channel folder {channel} does not exist")
    fmt, where = _find_format(channel, split)
    files_present = _channel_files(channel)
    found = fmt.read(channel, files_present, where, split)
    if not found.files:
        raise DataError(f"{found.source.name} lists no images")
    labels, names = _class_labels(found, class_names)
    found = dataclasses.replace(found, box_class=labels)
    if check_images:
        paths = np.array([os.path.join(channel, f) for f in found.files], dtype=object)
        found = _check_images(found, paths, files_present, max_bad_images)
    else:
        missing = [f for f in found.files if f not in files_present]
        if missing:
            raise DataError(
                f"{len(missing)} of {len(found.files)} images are missing, "
                f"e.g. {_examples(missing)}"
            )
        paths = np.array([os.path.join(channel, f) for f in found.files], dtype=object)
        found = _read_sizes(found, paths)
    found = _in_pixels(found)
    paths = np.array([os.path.join(channel, f) for f in found.files], dtype=object)
    if not len(found.boxes):
        raise DataError(f"{found.source.name} has no boxes: nothing to learn")
    boxes = _checked_boxes(found)
    order = np.argsort(found.box_image, kind="stable")
    counts = np.bincount(found.box_image, minlength=len(found.files))
    log.info(
        "%s: %s layout%s, %d images, %d boxes, %d classes",
        channel.name,
        fmt.NAME,
        f" ({split} split)" if split else "",
        len(paths),
        len(boxes),
        len(names),
    )
    return DetectionTable(
        paths=paths,
        widths=found.widths,
        heights=found.heights,
        offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        boxes=boxes[order],
        labels=found.box_class[order],
        class_names=names,
    )


def _split_folder(channel: Path, names: tuple[str, ...]) -> Path | None:
    return next((channel / n for n in names if (channel / n).is_dir()), None)


def load_splits(
    channel: Path, *, check_images: bool = True, max_bad_images: int = 0
) -> tuple[DetectionTable, DetectionTable | None]:
    """The training table, and the validation table when the channel holds one.

    In order: ``train/`` and ``valid/`` (or ``val/``, ``validation/``) folders when the root
    holds no format of its own; a root that declares both splits; else the whole channel
    and None (the caller splits off validation images). Validation classes follow training.
    """
    if not channel.is_dir():
        raise DataError(f"channel folder {channel} does not exist")
    options = {"check_images": check_images, "max_bad_images": max_bad_images}
    root_format = [fmt for fmt in FORMATS if fmt.find(channel, "train") is not None]
    train_dir = _split_folder(channel, TRAIN_FOLDERS)
    if not root_format and train_dir is not None:
        train = load(train_dir, **options)
        valid_dir = _split_folder(channel, VALID_FOLDERS)
        valid = load(valid_dir, train.class_names, **options) if valid_dir else None
        return train, valid
    if len(root_format) == 1 and root_format[0].splits(channel):
        train = load(channel, split="train", **options)
        return train, load(channel, train.class_names, split="val", **options)
    return load(channel, **options), None


def split(
    table: DetectionTable, valid_fraction: float, seed: int
) -> tuple[DetectionTable, DetectionTable]:
    """A seeded split of one table into training and validation parts."""
    if len(table) < 2:
        raise DataError(
            f"the training channel has {len(table)} image; at least 2 are needed to split off "
            "validation images, or provide a 'validation' channel"
        )
    order = np.random.default_rng(seed).permutation(len(table))
    n_valid = min(max(1, round(len(table) * valid_fraction)), len(table) - 1)
    return table.subset(np.sort(order[n_valid:])), table.subset(np.sort(order[:n_valid]))


class Records(Sequence):
    """IceVision records over a table, built on access (in the DataLoader's workers)."""

    def __init__(self, table: DetectionTable) -> None:
        compat.apply()
        from icevision.core.class_map import ClassMap

        self.table = table
        self.class_map = ClassMap(list(table.class_names))

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, i: int):
        compat.apply()  # no-op when already applied; a spawned worker starts clean
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


DECODE_ERRORS = (OSError, ValueError, SyntaxError, PIL.Image.DecompressionBombError)


class ReadChecked(Sequence):
    """Records as transformed uint8 images, where one that fails to decode is a DataError naming
    the file. (IceVision's Dataset without its deep copy of each record: Records builds a fresh
    one.)

    The header check in ``load`` cannot see every corruption (a full decode of a million
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


def dataset(
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
    compat.apply()
    from icevision import tfms

    steps = [*tfms.A.resize_and_pad(image_size)]
    if train and augmentation == "standard":
        steps = [*tfms.A.aug_tfms(image_size)]
    elif train and augmentation == "light":
        steps.insert(0, tfms.A.HorizontalFlip(p=0.5))
    return ReadChecked(Records(table), tfms.A.Adapter(steps), max_bad_images)

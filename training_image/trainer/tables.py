"""A channel's annotations as one validated ``DetectionTable``, in any format of
``trainer.formats``, read column-wise and checked by one shared validation.

Formats (recognised from the channel's top; names starting with ``_`` or ``.`` are ignored,
so an upload marker such as ``_launch.json`` never counts, except Roboflow's
``_annotations.coco.json``): COCO, Pascal VOC, YOLO (Ultralytics ``data.yaml``) and SageMaker
Ground Truth output manifests; docs/datasets.md shows each layout. ``load_splits`` also reads
a dataset whose ``train/`` and ``valid/`` (or ``val/``) folders, or whose root (``data.yaml``'s
train and val, ``instances_train.json`` and ``instances_val.json``), hold both splits.

Annotations become one ``DetectionTable`` (flat numpy columns, no per-image objects); the
image files are checked by ``trainer.image_files`` and decoded later, by ``trainer.dataset``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trainer import image_files
from trainer.errors import DataError
from trainer.formats import FORMATS
from trainer.formats.common import EXAMPLES
from trainer.formats.common import Annotations as _Annotations
from trainer.formats.common import channel_files as _channel_files
from trainer.formats.common import examples as _examples

log = logging.getLogger(__name__)

BOX_TOLERANCE_PX = 1.0
RESERVED_CLASS = "background"
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
        found = image_files.check_images(found, paths, files_present, max_bad_images)
    else:
        missing = [f for f in found.files if f not in files_present]
        if missing:
            raise DataError(
                f"{len(missing)} of {len(found.files)} images are missing, "
                f"e.g. {_examples(missing)}"
            )
        paths = np.array([os.path.join(channel, f) for f in found.files], dtype=object)
        found = image_files.read_sizes(found, paths)
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

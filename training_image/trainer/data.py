"""Detection datasets from a channel: COCO or Pascal VOC, read column-wise and validated.

Layouts (detected from the channel's contents; names starting with ``_`` or ``.``
are ignored, so an upload marker such as ``_launch.json`` never counts):

- COCO: exactly one ``*.json`` at the channel root; each ``file_name`` is relative
  to the json's folder or to ``images/`` beside it.
- Pascal VOC: ``annotations/*.xml`` (or ``Annotations/``) and ``images/`` (or
  ``JPEGImages/``); each xml names its image in ``<filename>``.

Annotations become one ``DetectionTable`` (flat numpy columns, no per-image
objects); IceVision records are built lazily, one per item, when a batch needs it.
Image sizes come from the annotations; an image is only opened here to confirm
that it is readable (header only) and, where the annotation omits it, its size.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import PIL.Image

from trainer import compat
from trainer.errors import DataError

log = logging.getLogger(__name__)

BOX_TOLERANCE_PX = 1.0
EXAMPLES = 3
RESERVED_CLASS = "background"
VOC_ANNOTATION_DIRS = ("annotations", "Annotations")
VOC_IMAGE_DIRS = ("images", "JPEGImages")


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


@dataclass(frozen=True)
class _Annotations:
    """What a reader found, before classes are indexed and boxes validated."""

    source: Path
    files: list[str]  # relative to the channel
    widths: np.ndarray
    heights: np.ndarray
    box_image: np.ndarray  # (m,) row of each box's image
    boxes: np.ndarray  # (m, 4) xyxy
    box_class: np.ndarray  # (m,) index into class_names
    class_names: list[str]


def _examples(values: Sequence[object]) -> str:
    shown = ", ".join(str(v) for v in list(values)[:EXAMPLES])
    return shown + (", ..." if len(values) > EXAMPLES else "")


def _visible(path: Path) -> bool:
    return not path.name.startswith(("_", "."))


def _channel_files(channel: Path) -> set[str]:
    found = set()
    for folder, dirs, files in os.walk(channel):
        dirs[:] = [d for d in dirs if not d.startswith(("_", "."))]
        rel = os.path.relpath(folder, channel)
        prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        found.update(prefix + f for f in files if not f.startswith(("_", ".")))
    return found


# ---- COCO


class _CocoColumns(NamedTuple):
    category_ids: np.ndarray
    class_names: list[str]
    image_ids: np.ndarray
    files: list[str]
    widths: np.ndarray
    heights: np.ndarray
    box_image_id: np.ndarray
    box_category: np.ndarray
    flat_boxes: np.ndarray  # x, y, width, height of every box, one after the other


def _coco_columns(doc: dict, source: Path) -> _CocoColumns:
    for key in ("images", "annotations", "categories"):
        if not isinstance(doc.get(key), list):
            raise DataError(f"{source.name} is not a COCO file: it has no {key!r} list")
    categories, images = doc["categories"], doc["images"]
    if not categories:
        raise DataError(f"{source.name} declares no classes: its 'categories' list is empty")
    if not images:
        raise DataError(f"{source.name} lists no images")
    annotations = [a for a in doc["annotations"] if not a.get("iscrowd")]
    category_ids = np.array([c["id"] for c in categories], dtype=np.int64)
    class_names = [str(c.get("name", "")).strip() for c in categories]
    image_ids = np.array([im["id"] for im in images], dtype=np.int64)
    files = [str(im["file_name"]) for im in images]
    widths = np.array([im.get("width") or 0 for im in images], dtype=np.int64)
    heights = np.array([im.get("height") or 0 for im in images], dtype=np.int64)
    count = len(annotations)
    box_image_id = np.fromiter((a["image_id"] for a in annotations), np.int64, count)
    box_category = np.fromiter((a["category_id"] for a in annotations), np.int64, count)
    flat = np.fromiter(itertools.chain.from_iterable(a["bbox"] for a in annotations), np.float64)
    if flat.size != 4 * count:
        raise DataError(f"{source.name}: every annotation 'bbox' must be [x, y, width, height]")
    return _CocoColumns(
        category_ids,
        class_names,
        image_ids,
        files,
        widths,
        heights,
        box_image_id,
        box_category,
        flat,
    )


def _lookup(keys: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row of each wanted key in keys (unique), and a mask of the wanted keys found."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    pos = np.minimum(np.searchsorted(sorted_keys, wanted), max(len(keys) - 1, 0))
    found = sorted_keys[pos] == wanted if len(keys) else np.zeros(len(wanted), bool)
    return order[pos], found


def _read_coco(source: Path, channel: Path, files_present: set[str]) -> _Annotations:
    try:
        doc = json.loads(source.read_bytes())
        coco = _coco_columns(doc, source)
    except DataError:
        raise
    except (OSError, ValueError) as error:
        raise DataError(f"{source.name} is not readable JSON ({error})") from None
    except (KeyError, TypeError, AttributeError) as error:
        raise DataError(
            f"{source.name} is not a valid COCO file: missing or bad field {error}"
        ) from None
    for what, ids in (("category", coco.category_ids), ("image", coco.image_ids)):
        unique, counts = np.unique(ids, return_counts=True)
        if (counts > 1).any():
            raise DataError(
                f"{source.name}: duplicate {what} ids, e.g. {_examples(unique[counts > 1])}"
            )
    box_image, known_image = _lookup(coco.image_ids, coco.box_image_id)
    if not known_image.all():
        bad = coco.box_image_id[~known_image]
        raise DataError(
            f"{source.name}: {len(bad)} of {len(bad) + known_image.sum()} annotations refer to "
            f"image ids not in 'images', e.g. {_examples(np.unique(bad))}"
        )
    box_class, known_class = _lookup(coco.category_ids, coco.box_category)
    if not known_class.all():
        bad = np.unique(coco.box_category[~known_class])
        raise DataError(
            f"{source.name}: {(~known_class).sum()} annotations have unknown category ids "
            f"{_examples(bad)}; allowed: the ids in 'categories' ({_examples(coco.category_ids)})"
        )
    xywh = coco.flat_boxes.reshape(-1, 4)
    boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
    prefixes = ["", "images/"]  # the json is at the channel root (see _find_layout)
    best = max(prefixes, key=lambda p: sum(p + f in files_present for f in coco.files[:1000]))
    return _Annotations(
        source=source,
        files=[best + f for f in coco.files],
        widths=coco.widths,
        heights=coco.heights,
        box_image=box_image,
        boxes=boxes,
        box_class=box_class,
        class_names=coco.class_names,
    )


# ---- Pascal VOC


def _read_voc(annotation_dir: Path, image_dir: Path, channel: Path) -> _Annotations:
    xml_files = sorted(p for p in annotation_dir.glob("*.xml") if _visible(p))
    image_prefix = image_dir.relative_to(channel).as_posix() + "/"
    files, widths, heights, box_image, coords, names = [], [], [], [], [], []
    for row, xml_file in enumerate(xml_files):
        try:
            root = ElementTree.parse(xml_file).getroot()
            filename = (root.findtext("filename") or "").strip()
            if not filename:
                raise DataError(f"{xml_file.name} has no <filename>")
            widths.append(int(float(root.findtext("size/width") or 0)))
            heights.append(int(float(root.findtext("size/height") or 0)))
            for obj in root.iter("object"):
                names.append((obj.findtext("name") or "").strip())
                box = obj.find("bndbox")
                coords.append([float(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")])
                box_image.append(row)
        except (ElementTree.ParseError, AttributeError, TypeError, ValueError) as error:
            raise DataError(
                f"{xml_file.name} is not a valid Pascal VOC annotation ({error})"
            ) from None
        files.append(image_prefix + filename)
    class_names = sorted(set(names))
    index = {name: i for i, name in enumerate(class_names)}
    return _Annotations(
        source=annotation_dir,
        files=files,
        widths=np.array(widths, dtype=np.int64),
        heights=np.array(heights, dtype=np.int64),
        box_image=np.array(box_image, dtype=np.int64),
        boxes=np.array(coords, dtype=np.float64).reshape(-1, 4),
        box_class=np.array([index[n] for n in names], dtype=np.int64),
        class_names=class_names,
    )


# ---- detection, validation, assembly


def _find_layout(channel: Path, files_present: set[str]) -> tuple[str, tuple[Path, ...]]:
    entries = sorted(p for p in channel.iterdir() if _visible(p))
    jsons = [p for p in entries if p.is_file() and p.suffix.lower() == ".json"]
    if len(jsons) > 1:
        raise DataError(
            f"{channel.name}: found {len(jsons)} COCO annotation files "
            f"({_examples([p.name for p in jsons])}); "
            "allowed: exactly one *.json at the top of the channel"
        )
    if jsons:
        return "coco", (jsons[0],)
    annotation_dir = next(
        (channel / d for d in VOC_ANNOTATION_DIRS if (channel / d).is_dir()), None
    )
    image_dir = next((channel / d for d in VOC_IMAGE_DIRS if (channel / d).is_dir()), None)
    if annotation_dir and image_dir:
        return "voc", (annotation_dir, image_dir)
    found = _examples([p.name for p in entries]) or "nothing"
    raise DataError(
        f"channel {channel.name!r} holds neither COCO (one *.json beside the images) "
        "nor Pascal VOC "
        f"(annotations/*.xml and images/); found: {found}"
    )


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


def _header_size(path: str) -> tuple[int, int] | None:
    try:
        with PIL.Image.open(path) as image:
            width, height = image.size
            orientation = image.getexif().get(0x0112)
    except (OSError, ValueError, PIL.Image.DecompressionBombError):
        return None
    return (height, width) if orientation in (6, 8) else (width, height)


def _check_images(found: _Annotations, paths: np.ndarray, files_present: set[str]) -> None:
    missing = [f for f in found.files if f not in files_present]
    if missing:
        raise DataError(
            f"{len(missing)} of {len(found.files)} images named in {found.source.name} "
            "are missing, "
            f"e.g. {_examples(missing)}"
        )
    with ThreadPoolExecutor(max_workers=8) as pool:
        sizes = list(pool.map(_header_size, paths, chunksize=64))
    unreadable = [found.files[i] for i, size in enumerate(sizes) if size is None]
    if unreadable:
        raise DataError(
            f"{len(unreadable)} of {len(sizes)} images are not readable images, "
            f"e.g. {_examples(unreadable)}"
        )
    actual = np.array(sizes, dtype=np.int64).reshape(-1, 2)
    unstated = (found.widths <= 0) | (found.heights <= 0)
    found.widths[unstated], found.heights[unstated] = actual[unstated, 0], actual[unstated, 1]
    wrong = np.flatnonzero((actual[:, 0] != found.widths) | (actual[:, 1] != found.heights))
    if len(wrong):
        shown = [
            f"{found.files[i]} ({found.widths[i]}x{found.heights[i]} stated, "
            f"{actual[i, 0]}x{actual[i, 1]} on disk)"
            for i in wrong[:EXAMPLES]
        ]
        raise DataError(
            f"{len(wrong)} images differ in size from {found.source.name}, e.g. {'; '.join(shown)}"
        )


def _checked_boxes(found: _Annotations) -> np.ndarray:
    boxes = found.boxes
    width = found.widths[found.box_image].astype(np.float64)
    height = found.heights[found.box_image].astype(np.float64)
    degenerate = (boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1])
    outside = (
        (boxes[:, 0] < -BOX_TOLERANCE_PX)
        | (boxes[:, 1] < -BOX_TOLERANCE_PX)
        | (boxes[:, 2] > width + BOX_TOLERANCE_PX)
        | (boxes[:, 3] > height + BOX_TOLERANCE_PX)
    )
    for problem, mask in (
        ("have no area (xmax <= xmin or ymax <= ymin)", degenerate),
        ("lie outside their image", outside),
    ):
        if mask.any():
            shown = [
                f"{found.files[found.box_image[i]]} box {np.round(boxes[i], 1).tolist()} in "
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


def load(
    channel: Path, class_names: tuple[str, ...] | None = None, *, check_images: bool = True
) -> DetectionTable:
    """A channel's dataset, validated: every image present and readable, every box inside it.

    ``class_names`` (from the training channel) fixes the classes of a validation channel.
    Raises DataError with counts and examples.
    """
    if not channel.is_dir():
        raise DataError(f"channel folder {channel} does not exist")
    files_present = _channel_files(channel)
    layout, where = _find_layout(channel, files_present)
    found = (
        _read_coco(where[0], channel, files_present)
        if layout == "coco"
        else _read_voc(*where, channel)
    )
    if not found.files:
        raise DataError(f"{found.source.name} lists no images")
    labels, names = _class_labels(found, class_names)
    paths = np.array([os.path.join(channel, f) for f in found.files], dtype=object)
    if check_images:
        _check_images(found, paths, files_present)
    else:
        missing = [f for f in found.files if f not in files_present]
        if missing:
            raise DataError(
                f"{len(missing)} of {len(found.files)} images are missing, "
                f"e.g. {_examples(missing)}"
            )
    if not len(found.boxes):
        raise DataError(f"{found.source.name} has no boxes: nothing to learn")
    boxes = _checked_boxes(found)
    order = np.argsort(found.box_image, kind="stable")
    counts = np.bincount(found.box_image, minlength=len(found.files))
    log.info(
        "%s: %s layout, %d images, %d boxes, %d classes",
        channel.name,
        layout.upper(),
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
        labels=labels[order],
        class_names=names,
    )


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


def dataset(table: DetectionTable, image_size: int, *, train: bool):
    """Records as uint8 images: resize the longest side, pad to a square; flip to train.

    The pixels are normalized on the training device (trainer.batches), not in the workers.
    """
    compat.apply()
    from icevision import tfms

    steps = [*tfms.A.resize_and_pad(image_size)]
    if train:
        steps.insert(0, tfms.A.HorizontalFlip(p=0.5))
    return ImageDataset(Records(table), tfms.A.Adapter(steps))


class ImageDataset(Sequence):
    """IceVision's Dataset without its deep copy of each record (Records builds a fresh one)."""

    def __init__(self, records: Records, transform) -> None:
        self.records, self.transform = records, transform

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int):
        record = self.records[i]
        record.reduce_on_components("_load")  # decode the image
        return self.transform(record)

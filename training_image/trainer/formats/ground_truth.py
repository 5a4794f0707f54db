"""SageMaker Ground Truth bounding-box output: an augmented manifest (``*.manifest``, JSON Lines)
with the images in the channel beside it.

Each line: ``source-ref`` (the image's S3 URI), a label attribute (the labeling job's name)
holding ``annotations`` (``class_id``, ``left``, ``top``, ``width``, ``height``, in pixels) and
``image_size``, and ``<label>-metadata`` with ``class-map`` (class id -> name). An image is
found in the channel by its S3 key, or by that key's shorter tails down to its file name.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from trainer.errors import DataError
from trainer.formats.common import Annotations, examples, normalised, visible

NAME = "Ground Truth"
LAYOUT = "SageMaker Ground Truth (an output *.manifest beside the images)"
SUFFIX = ".manifest"
TASK_TYPE = "groundtruth/object-detection"


def _manifests(channel: Path) -> list[Path]:
    return [
        p
        for p in sorted(channel.iterdir())
        if p.is_file() and visible(p) and p.suffix.lower() == SUFFIX
    ]


def splits(channel: Path) -> tuple[str, ...]:
    names = [p.stem.lower() for p in _manifests(channel)]
    has = {s: [n for n in names if s in n] for s in ("train", "val")}
    return ("train", "val") if len(has["train"]) == 1 and len(has["val"]) == 1 else ()


def find(channel: Path, split: str | None = None) -> Path | None:
    manifests = _manifests(channel)
    if split and len(manifests) > 1:
        manifests = [p for p in manifests if split in p.stem.lower()] or manifests
    if len(manifests) > 1:
        raise DataError(
            f"{channel.name}: found {len(manifests)} Ground Truth manifests "
            f"({examples([p.name for p in manifests])}); allowed: exactly one *.manifest, "
            "or one per split (train.manifest and val.manifest)"
        )
    return manifests[0] if manifests else None


def describe(found: Path, channel: Path) -> str:
    return f"Ground Truth ({found.name})"


def _label_attribute(line: dict, source: Path, number: int) -> str:
    """The job's label attribute: the key with a ``-metadata`` partner holding annotations."""
    found = [
        key
        for key, value in line.items()
        if isinstance(value, dict)
        and "annotations" in value
        and isinstance(line.get(f"{key}-metadata"), dict)
    ]
    detection = [k for k in found if line[f"{k}-metadata"].get("type") == TASK_TYPE]
    found = detection or found
    if len(found) != 1:
        keys = examples([k for k in line if k != "source-ref"])
        raise DataError(
            f"{source.name} line {number}: found {len(found)} bounding-box label attributes "
            f"among {keys}; allowed: exactly one attribute with 'annotations' and its "
            "'<attribute>-metadata' (type groundtruth/object-detection)"
        )
    return found[0]


def _image(ref: str, files_present: set[str]) -> str:
    """The channel file for a source-ref: its key, or a shorter tail of it, or its name."""
    key = normalised(ref.split("://", 1)[1].split("/", 1)[-1] if "://" in ref else ref)
    parts = key.split("/")
    for start in range(len(parts)):
        candidate = "/".join(parts[start:])
        if candidate in files_present:
            return candidate
    return parts[-1]


def read(
    channel: Path, files_present: set[str], source: Path, split: str | None = None
) -> Annotations:
    files, widths, heights, box_image, coords, classes, box_ids = [], [], [], [], [], [], []
    class_map: dict[int, str] = {}
    attribute = None
    with source.open(encoding="utf-8") as lines:
        for number, text in enumerate(lines, start=1):
            if not text.strip():
                continue
            try:
                line = json.loads(text)
            except ValueError as error:
                raise DataError(
                    f"{source.name} line {number} is not valid JSON ({error})"
                ) from None
            try:
                attribute = attribute or _label_attribute(line, source, number)
                label, metadata = line[attribute], line[f"{attribute}-metadata"]
                size = label.get("image_size") or [{}]
                row = len(files)
                files.append(_image(str(line["source-ref"]), files_present))
                widths.append(int(size[0].get("width") or 0))
                heights.append(int(size[0].get("height") or 0))
                for key, name in (metadata.get("class-map") or {}).items():
                    class_map.setdefault(int(key), str(name).strip())
                for n, box in enumerate(label["annotations"], start=1):
                    coords.append([box["left"], box["top"], box["width"], box["height"]])
                    classes.append(int(box["class_id"]))
                    box_image.append(row)
                    box_ids.append(f"{source.name} line {number} annotation {n}")
            except (KeyError, TypeError, AttributeError, IndexError, ValueError) as error:
                raise DataError(
                    f"{source.name} line {number} is not a Ground Truth bounding-box line: "
                    f"missing or bad field {error}; allowed: source-ref, <attribute> with "
                    "annotations (class_id, left, top, width, height) and image_size, "
                    "<attribute>-metadata with class-map"
                ) from None
    ids = sorted(class_map)
    unknown = sorted(set(classes) - set(class_map))
    if unknown:
        raise DataError(
            f"{source.name}: class ids {examples(unknown)} are not in any line's class-map; "
            f"allowed: {examples(ids)}"
        )
    row_of = {class_id: row for row, class_id in enumerate(ids)}
    try:
        xywh = np.array(coords, dtype=np.float64).reshape(-1, 4)
    except (TypeError, ValueError):
        raise DataError(
            f"{source.name}: some box has a left, top, width or height that is not a number"
        ) from None
    boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
    return Annotations(
        source=source,
        files=files,
        widths=np.array(widths, dtype=np.int64),
        heights=np.array(heights, dtype=np.int64),
        box_image=np.array(box_image, dtype=np.int64),
        boxes=boxes,
        box_class=np.array([row_of[c] for c in classes], dtype=np.int64),
        class_names=[class_map[i] for i in ids],
        box_ids=box_ids,
    )

"""COCO: one ``*.json`` at the channel root (Roboflow's ``_annotations.coco.json`` counts).

Each ``file_name`` is relative to the json's folder, to ``images/`` beside it, or to the
folder that holds it (COCO's own ``train2017/``). Splits at the root: ``instances_train*.json``
and ``instances_val*.json`` (any names holding ``train`` and ``val``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from trainer.errors import DataError
from trainer.formats.common import EXAMPLES, Annotations, examples, normalised, visible

NAME = "COCO"
LAYOUT = "COCO (one *.json beside the images)"
ROBOFLOW_NAME = "_annotations.coco.json"


def _jsons(channel: Path) -> list[Path]:
    found = [
        p
        for p in sorted(channel.iterdir())
        if p.is_file() and p.suffix.lower() == ".json" and (visible(p) or p.name == ROBOFLOW_NAME)
    ]
    if not found and (channel / "annotations").is_dir():  # COCO's own annotations/instances_*
        found = sorted(
            p for p in (channel / "annotations").glob("*.json") if visible(p) and p.is_file()
        )
    return found


def splits(channel: Path) -> tuple[str, ...]:
    """``("train", "val")`` when the root holds one json for each."""
    names = [p.stem.lower() for p in _jsons(channel)]
    has = {s: [n for n in names if s in n] for s in ("train", "val")}
    return ("train", "val") if len(has["train"]) == 1 and len(has["val"]) == 1 else ()


def find(channel: Path, split: str | None = None) -> Path | None:
    """The annotation file, None if the channel holds no COCO json."""
    jsons = _jsons(channel)
    if split and len(jsons) > 1:
        jsons = [p for p in jsons if split in p.stem.lower()] or jsons
    if len(jsons) > 1:
        raise DataError(
            f"{channel.name}: found {len(jsons)} COCO annotation files "
            f"({examples([p.name for p in jsons])}); "
            "allowed: exactly one *.json at the top of the channel, or one per split "
            "(instances_train.json and instances_val.json)"
        )
    return jsons[0] if jsons else None


def describe(found: Path, channel: Path) -> str:
    return f"COCO ({found.relative_to(channel).as_posix()})"


def _index(ids: list, what: str, source: Path) -> dict:
    """Row of each id. COCO ids are integers of any size; some exports write strings."""
    rows = {key: row for row, key in enumerate(ids)}
    if len(rows) != len(ids):
        seen, dups = set(), []
        for key in ids:
            if key in seen:
                dups.append(key)
            seen.add(key)
        raise DataError(f"{source.name}: duplicate {what} ids, e.g. {examples(dups)}")
    return rows


def _is_box(value: object) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 4
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    )


def _prefix(
    files: list[str], files_present: set[str], source: Path, channel: Path, split: str | None
) -> str:
    """Where the file names are relative to: the channel, images/, or the folder holding them
    (one named after the split first: val2017/ for instances_val2017.json)."""
    sample = files[:1000]
    candidates = ["", "images/"]
    folder = source.parent.relative_to(channel).as_posix()
    if folder != ".":
        candidates += [folder + "/", folder + "/images/"]
    best = max(candidates, key=lambda p: sum(p + f in files_present for f in sample))
    if sample and not any(best + f in files_present for f in sample[:20]):
        first = sample[0]
        found = sorted(
            (p[: -len(first)] for p in files_present if p.endswith("/" + first)),
            key=lambda p: (bool(split) and split not in p.lower(), p),
        )
        best = found[0] if found else best
    return best


def read(
    channel: Path, files_present: set[str], source: Path, split: str | None = None
) -> Annotations:
    try:
        doc = json.loads(source.read_bytes())
    except (OSError, ValueError) as error:
        raise DataError(f"{source.name} is not readable JSON ({error})") from None
    try:
        return _annotations(doc, source, channel, files_present, split)
    except (KeyError, TypeError, AttributeError) as error:
        raise DataError(
            f"{source.name} is not a valid COCO file: missing or bad field {error}"
        ) from None


def _annotations(
    doc: dict, source: Path, channel: Path, files_present: set[str], split: str | None
) -> Annotations:
    if not isinstance(doc, dict):
        raise DataError(f"{source.name} is not a COCO file: it holds a {type(doc).__name__}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(doc.get(key), list):
            raise DataError(f"{source.name} is not a COCO file: it has no {key!r} list")
    categories, images = doc["categories"], doc["images"]
    if not categories:
        raise DataError(f"{source.name} declares no classes: its 'categories' list is empty")
    if not images:
        raise DataError(f"{source.name} lists no images")
    annotations = [a for a in doc["annotations"] if not a.get("iscrowd")]
    category_row = _index([c["id"] for c in categories], "category", source)
    image_row = _index([im["id"] for im in images], "image", source)
    files = [normalised(str(im["file_name"])) for im in images]
    best = _prefix(files, files_present, source, channel, split)
    files = [best + f for f in files]
    box_ids = [a.get("id", f"#{i + 1}") for i, a in enumerate(annotations)]
    box_image = np.array([image_row.get(a["image_id"], -1) for a in annotations], np.int64)
    if (box_image < 0).any():
        bad = [a["image_id"] for a, row in zip(annotations, box_image, strict=True) if row < 0]
        raise DataError(
            f"{source.name}: {len(bad)} of {len(annotations)} annotations refer to "
            f"image ids not in 'images', e.g. {examples(bad)}"
        )
    box_class = np.array([category_row.get(a["category_id"], -1) for a in annotations], np.int64)
    if (box_class < 0).any():
        bad = sorted({str(a["category_id"]) for a in annotations} - set(map(str, category_row)))
        raise DataError(
            f"{source.name}: {(box_class < 0).sum()} annotations have unknown category ids "
            f"{examples(bad)}; allowed: the ids in 'categories' "
            f"({examples([c['id'] for c in categories])})"
        )
    bboxes = [a["bbox"] for a in annotations]
    malformed = [i for i, box in enumerate(bboxes) if not _is_box(box)]
    if malformed:
        shown = [
            f"{files[box_image[i]]} annotation id {box_ids[i]}: {bboxes[i]!r}"
            for i in malformed[:EXAMPLES]
        ]
        raise DataError(
            f"{source.name}: {len(malformed)} annotations have a 'bbox' that is not 4 numbers "
            f"[x, y, width, height], e.g. {'; '.join(shown)}"
        )
    xywh = np.array(bboxes, dtype=np.float64).reshape(-1, 4)
    boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
    return Annotations(
        source=source,
        files=files,
        widths=np.array([im.get("width") or 0 for im in images], dtype=np.int64),
        heights=np.array([im.get("height") or 0 for im in images], dtype=np.int64),
        box_image=box_image,
        boxes=boxes,
        box_class=box_class,
        class_names=[str(c.get("name", "")).strip() for c in categories],
        box_ids=[f"annotation id {i}" for i in box_ids],
    )

"""YOLO (Ultralytics layout): ``data.yaml`` with ``names`` and the split folders, ``images/`` and
``labels/`` with one ``class cx cy w h`` line per box (normalized to [0, 1]).

Paths in the yaml resolve as Ultralytics' ``check_det_dataset`` does, inside the channel:
``path`` (relative to the yaml's folder; an absolute one from the exporting machine falls
back to it), then each split relative to it; a split starting with ``../`` that does not
exist there is tried without it (Roboflow writes ``../train/images``). A split is a folder,
a list of folders, or a ``.txt`` listing images. Each image's label file is its path with
the last ``/images/`` turned into ``/labels/`` and the suffix into ``.txt`` (Ultralytics'
``img2label_paths``); no label file, or an empty one, means no objects. YOLO states no image
size: the shared validation reads the headers, in parallel.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import yaml

from trainer.errors import DataError
from trainer.formats.common import IMAGE_SUFFIXES, Annotations, examples, normalised, visible

NAME = "YOLO"
LAYOUT = "YOLO (data.yaml with names, images/ and labels/)"
YAML_NAMES = ("data.yaml", "data.yml")
SPLITS = ("train", "val")


def _yaml(channel: Path) -> Path | None:
    for name in YAML_NAMES:
        if (channel / name).is_file():
            return channel / name
    found = [
        p
        for p in sorted(channel.iterdir())
        if p.is_file() and visible(p) and p.suffix.lower() in (".yaml", ".yml")
    ]
    if len(found) != 1:
        return None
    try:  # another name counts only when it holds YOLO's class names
        doc = yaml.safe_load(found[0].read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    return found[0] if isinstance(doc, dict) and "names" in doc else None


def find(channel: Path, split: str | None = None) -> Path | None:
    return _yaml(channel)


def describe(found: Path, channel: Path) -> str:
    return f"YOLO ({found.name})"


def _document(source: Path) -> dict:
    try:
        doc = yaml.safe_load(source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise DataError(f"{source.name} is not readable YAML ({error})") from None
    if not isinstance(doc, dict):
        raise DataError(f"{source.name} is not a YOLO data file: it holds no mapping")
    return doc


def splits(channel: Path) -> tuple[str, ...]:
    source = _yaml(channel)
    if source is None:
        return ()
    doc = _document(source)
    return SPLITS if all(doc.get(s) for s in SPLITS) else ()


def _class_names(doc: dict, source: Path) -> list[str]:
    names = doc.get("names")
    if isinstance(names, dict):
        keys = sorted(names, key=lambda k: (not isinstance(k, int), str(k)))
        if keys != list(range(len(keys))):
            raise DataError(
                f"{source.name}: 'names' has keys {examples(keys)}; "
                "allowed: the class ids 0, 1, 2, ... without gaps"
            )
        names = [names[k] for k in keys]
    if not isinstance(names, list) or not names:
        raise DataError(
            f"{source.name}: 'names' is {names!r}; allowed: a list of class names, "
            "or a mapping from class id (0, 1, ...) to name"
        )
    if "nc" in doc and doc["nc"] != len(names):
        raise DataError(f"{source.name}: nc is {doc['nc']!r} but 'names' lists {len(names)}")
    return [str(n).strip() for n in names]


def _resolve(root: Path, value: str, channel: Path, source: Path, key: str) -> str:
    """A split entry as a path relative to the channel (Ultralytics' rule, kept inside it)."""
    target = os.path.normpath(root / value)
    if not os.path.exists(target) and value.startswith("../"):
        target = os.path.normpath(root / value[3:])
    relative = os.path.relpath(target, channel)
    if relative.startswith("..") or not os.path.exists(target):
        raise DataError(
            f"{source.name}: {key}: {value!r} resolves to {relative!r}, which is not in the "
            "channel; allowed: a folder or .txt list relative to 'path' (or to the yaml's folder)"
        )
    return "" if relative == "." else normalised(relative) + "/"


def _split_images(
    doc: dict, key: str, channel: Path, source: Path, files_present: set[str]
) -> list[str]:
    stated = doc.get("path")
    root = channel
    if isinstance(stated, str) and stated:
        candidate = Path(stated) if os.path.isabs(stated) else source.parent / stated
        root = candidate if candidate.is_dir() else source.parent
    entries = doc.get(key)
    entries = entries if isinstance(entries, list) else [entries]
    images: list[str] = []
    for entry in entries:
        if not isinstance(entry, str) or not entry:
            raise DataError(f"{source.name}: {key} is {entry!r}; allowed: a folder or a .txt")
        where = _resolve(root, entry, channel, source, key)
        if where.endswith(".txt/"):
            listing = channel / where[:-1]
            for line in listing.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    name = line.strip()
                    base = listing.parent if name.startswith("./") else root
                    images.append(_resolve(base, name, channel, source, key)[:-1])
        else:
            images.extend(
                f
                for f in files_present
                if f.startswith(where) and os.path.splitext(f)[1].lower() in IMAGE_SUFFIXES
            )
    return sorted(images)


def label_path(image: str) -> str:
    """Ultralytics' img2label_paths: the last /images/ becomes /labels/, the suffix .txt."""
    path = "/" + image
    head, sep, tail = path.rpartition("/images/")
    path = head + "/labels/" + tail if sep else path
    return os.path.splitext(path)[0][1:] + ".txt"


def _bad_line(label: str, number: int, line: str, why: str) -> DataError:
    return DataError(f"{label} line {number}: {line.strip()!r} {why}")


def _parse(label: str, text: str) -> tuple[list[str], list[int]]:
    """Tokens of the ``class cx cy w h`` lines, and the line number of each box."""
    tokens = text.split()
    lines = text.splitlines()
    numbers = [n for n, line in enumerate(lines, start=1) if line.strip()]
    if len(tokens) != 5 * len(numbers):
        for number in numbers:
            line = lines[number - 1]
            if len(line.split()) != 5:
                raise _bad_line(
                    label,
                    number,
                    line,
                    f"has {len(line.split())} values; allowed: 5 (class cx cy w h); "
                    "segmentation polygons are not read",
                )
    return tokens, numbers


def read(channel: Path, files_present: set[str], source: Path, split: str | None) -> Annotations:
    doc = _document(source)
    class_names = _class_names(doc, source)
    key = split or ("train" if doc.get("train") else "val")
    if not doc.get(key):
        raise DataError(f"{source.name} has no {key!r} entry; allowed: train and val folders")
    files = _split_images(doc, key, channel, source, files_present)
    tokens, counts, box_ids = [], [], []
    for image in files:
        label = label_path(image)
        if label not in files_present:
            counts.append(0)
            continue
        text = (channel / label).read_text(encoding="utf-8", errors="replace")
        found, numbers = _parse(label, text)
        tokens.extend(found)
        counts.append(len(numbers))
        box_ids.extend(f"{label} line {n}" for n in numbers)
    counts = np.array(counts, dtype=np.int64)
    try:
        values = np.array(tokens, dtype=np.float64).reshape(-1, 5)
    except ValueError:
        values = None
    if values is None or not np.isfinite(values).all():
        _refuse_first(channel, box_ids)
    classes = values[:, 0]
    bad_class = (classes != np.round(classes)) | (classes < 0) | (classes >= len(class_names))
    if bad_class.any():
        i = int(np.flatnonzero(bad_class)[0])
        raise DataError(
            f"{bad_class.sum()} boxes have a class that is not one of the {len(class_names)} "
            f"classes in {source.name}, e.g. {box_ids[i]}: class {values[i, 0]:g}; "
            f"allowed: 0 to {len(class_names) - 1}"
        )
    outside = ((values[:, 1:] < 0) | (values[:, 1:] > 1)).any(axis=1)
    if outside.any():
        shown = [
            f"{box_ids[i]}: {values[i, 1:].round(4).tolist()}" for i in np.flatnonzero(outside)[:3]
        ]
        raise DataError(
            f"{outside.sum()} of {len(values)} boxes have normalized coordinates outside "
            f"[0, 1], e.g. {'; '.join(shown)}; allowed: cx cy w h as fractions of the image "
            "size (pixel coordinates are not YOLO)"
        )
    cx, cy, w, h = values[:, 1], values[:, 2], values[:, 3], values[:, 4]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    return Annotations(
        source=source,
        files=files,
        widths=np.zeros(len(files), dtype=np.int64),
        heights=np.zeros(len(files), dtype=np.int64),
        box_image=np.repeat(np.arange(len(files)), counts),
        boxes=boxes,
        box_class=classes.astype(np.int64),
        class_names=class_names,
        box_ids=box_ids,
        normalized=True,
    )


def _refuse_first(channel: Path, box_ids: list[str]) -> None:
    """The first line whose values are not finite numbers, as a DataError."""
    for box_id in box_ids:
        label, _, number = box_id.rpartition(" line ")
        line = (channel / label).read_text(encoding="utf-8").splitlines()[int(number) - 1]
        try:
            finite = np.isfinite(np.array(line.split(), dtype=np.float64)).all()
        except ValueError:
            finite = False
        if not finite:
            raise _bad_line(label, int(number), line, "is not 5 finite numbers (class cx cy w h)")

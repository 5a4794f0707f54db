"""Pascal VOC: ``annotations/*.xml`` (or ``Annotations/``) and ``images/`` (or ``JPEGImages/``);
each xml names its image in ``<filename>``. Class names are the sorted names found."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np

from trainer.errors import DataError
from trainer.formats.common import Annotations, normalised, visible

NAME = "Pascal VOC"
LAYOUT = "Pascal VOC (annotations/*.xml and images/)"
ANNOTATION_DIRS = ("annotations", "Annotations")
IMAGE_DIRS = ("images", "JPEGImages")


def splits(channel: Path) -> tuple[str, ...]:
    return ()


def find(channel: Path, split: str | None = None) -> tuple[Path, Path] | None:
    """The annotation and image folders, None unless both exist and xml files are there."""
    annotation_dir = next((channel / d for d in ANNOTATION_DIRS if (channel / d).is_dir()), None)
    image_dir = next((channel / d for d in IMAGE_DIRS if (channel / d).is_dir()), None)
    if annotation_dir and image_dir and any(visible(p) for p in annotation_dir.glob("*.xml")):
        return annotation_dir, image_dir
    return None


def describe(found: tuple[Path, Path], channel: Path) -> str:
    return f"Pascal VOC ({found[0].name}/*.xml)"


def read(
    channel: Path, files_present: set[str], found: tuple[Path, Path], split: str | None = None
) -> Annotations:
    annotation_dir, image_dir = found
    xml_files = sorted(p for p in annotation_dir.glob("*.xml") if visible(p))
    image_prefix = image_dir.relative_to(channel).as_posix() + "/"
    files, widths, heights, box_image, coords, names, box_ids = [], [], [], [], [], [], []
    for row, xml_file in enumerate(xml_files):
        try:
            root = ElementTree.parse(xml_file).getroot()
            filename = (root.findtext("filename") or "").strip()
            if not filename:
                raise DataError(f"{xml_file.name} has no <filename>")
            widths.append(int(float(root.findtext("size/width") or 0)))
            heights.append(int(float(root.findtext("size/height") or 0)))
            for number, obj in enumerate(root.iter("object"), start=1):
                box_ids.append(f"{xml_file.name} object {number}")
                names.append((obj.findtext("name") or "").strip())
                box = obj.find("bndbox")
                coords.append([float(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")])
                box_image.append(row)
        except (ElementTree.ParseError, AttributeError, TypeError, ValueError) as error:
            raise DataError(
                f"{xml_file.name} is not a valid Pascal VOC annotation ({error})"
            ) from None
        files.append(image_prefix + normalised(filename))
    class_names = sorted(set(names))
    index = {name: i for i, name in enumerate(class_names)}
    return Annotations(
        source=annotation_dir,
        files=files,
        widths=np.array(widths, dtype=np.int64),
        heights=np.array(heights, dtype=np.int64),
        box_image=np.array(box_image, dtype=np.int64),
        boxes=np.array(coords, dtype=np.float64).reshape(-1, 4),
        box_class=np.array([index[n] for n in names], dtype=np.int64),
        class_names=class_names,
        box_ids=box_ids,
    )

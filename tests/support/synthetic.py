"""Small generated detection datasets (coloured rectangles on noise) in COCO and VOC layouts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ("red", "green")
COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40)}


def _scene(rng: np.random.Generator, size: tuple[int, int]) -> tuple[Image.Image, list]:
    width, height = size
    pixels = rng.integers(90, 160, (height, width, 3), dtype=np.uint8)
    objects = []
    for _ in range(int(rng.integers(1, 3))):
        name = CLASSES[int(rng.integers(len(CLASSES)))]
        w, h = (
            int(rng.integers(width // 5, width // 2)),
            int(rng.integers(height // 5, height // 2)),
        )
        x, y = int(rng.integers(0, width - w)), int(rng.integers(0, height - h))
        pixels[y : y + h, x : x + w] = COLOURS[name]
        objects.append((name, [x, y, x + w, y + h]))
    return Image.fromarray(pixels), objects


def write_coco(folder: Path, count: int = 12, *, seed: int = 0, size=(96, 80)) -> Path:
    """folder/annotations.json + folder/images/*.jpg"""
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    doc = {"images": [], "annotations": [], "categories": []}
    doc["categories"] = [{"id": i + 1, "name": n} for i, n in enumerate(CLASSES)]
    for image_id in range(1, count + 1):
        image, objects = _scene(rng, size)
        name = f"img_{image_id:04d}.jpg"
        image.save(folder / "images" / name, quality=90)
        doc["images"].append(
            {"id": image_id, "file_name": name, "width": size[0], "height": size[1]}
        )
        for label, (x1, y1, x2, y2) in objects:
            doc["annotations"].append(
                {
                    "id": len(doc["annotations"]) + 1,
                    "image_id": image_id,
                    "category_id": CLASSES.index(label) + 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": (x2 - x1) * (y2 - y1),
                    "iscrowd": 0,
                }
            )
    path = folder / "annotations.json"
    path.write_text(json.dumps(doc))
    return path


def write_voc(folder: Path, count: int = 12, *, seed: int = 0, size=(96, 80)) -> Path:
    """folder/annotations/*.xml + folder/images/*.png"""
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "annotations").mkdir(parents=True, exist_ok=True)
    for index in range(count):
        image, objects = _scene(rng, size)
        name = f"scene_{index:03d}.png"
        image.save(folder / "images" / name)
        body = "".join(
            f"<object><name>{label}</name><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin>"
            f"<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
            for label, (x1, y1, x2, y2) in objects
        )
        xml = (
            f"<annotation><filename>{name}</filename><size><width>{size[0]}</width>"
            f"<height>{size[1]}</height><depth>3</depth></size>{body}</annotation>"
        )
        (folder / "annotations" / f"scene_{index:03d}.xml").write_text(xml)
    return folder

"""A small, deterministic object-detection dataset of synthetic shapes, in COCO layout.

The rehearsal trains on it so that it needs nothing but this repository, and the image's
self-check (trainer/self_check.py) trains each family on a tiny one: the same arguments always
give byte-identical files. It needs Pillow alone, so the operator CLI (detrain/) may import it:
the one module of the trainer it does. Layout (what the trainer's COCO reader takes)::

    <folder>/annotations.json
    <folder>/images/shapes-0000.png ...
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

CLASSES = ("square", "circle", "triangle")
ANNOTATIONS_FILENAME = "annotations.json"
IMAGES_DIRNAME = "images"
MIN_IMAGE_SIZE = 32
DEFAULT_IMAGES = 96  # the rehearsal and benchmarks/bench_quality.py train on as many


@dataclass(frozen=True)
class SampleDataset:
    folder: Path
    images: int
    boxes: int
    classes: tuple[str, ...]


def _box(rng: random.Random, size: int, taken: list[tuple[int, int, int, int]]):
    """A square box of 25-45 % of the image that does not overlap the ones already drawn."""
    for _ in range(50):
        side = rng.randint(size // 4, size * 9 // 20)
        x0, y0 = rng.randint(0, size - side), rng.randint(0, size - side)
        box = (x0, y0, x0 + side, y0 + side)
        if all(box[2] <= t[0] or t[2] <= box[0] or box[3] <= t[1] or t[3] <= box[1] for t in taken):
            return box
    return None


def _draw(draw: ImageDraw.ImageDraw, shape: str, box: tuple[int, int, int, int], fill) -> None:
    x0, y0, x1, y1 = box
    if shape == "square":
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=fill)
    elif shape == "circle":
        draw.ellipse((x0, y0, x1 - 1, y1 - 1), fill=fill)
    else:
        draw.polygon([((x0 + x1) / 2, y0), (x1 - 1, y1 - 1), (x0, y1 - 1)], fill=fill)


def _image(rng: random.Random, size: int) -> tuple[Image.Image, list[tuple[str, tuple]]]:
    background = tuple(rng.randint(170, 255) for _ in range(3))
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    shapes: list[tuple[str, tuple]] = []
    taken: list[tuple[int, int, int, int]] = []
    for _ in range(rng.randint(1, 3)):
        box = _box(rng, size, taken)
        if box is None:
            break
        shape = rng.choice(CLASSES)
        _draw(draw, shape, box, fill=tuple(rng.randint(0, 110) for _ in range(3)))
        taken.append(box)
        shapes.append((shape, box))
    return image, shapes


def generate(
    folder: Path, *, images: int = 24, image_size: int = 128, seed: int = 0
) -> SampleDataset:
    """Write the dataset to ``folder`` (replaced whole: never left half-written)."""
    if images < 2:
        raise ValueError(f"images = {images} is too few; allowed: 2 or more")
    if image_size < MIN_IMAGE_SIZE:
        raise ValueError(
            f"image_size = {image_size} is too small; allowed: {MIN_IMAGE_SIZE} or more"
        )
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        coco = _write(staging, images=images, image_size=image_size, seed=seed)
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return SampleDataset(folder, len(coco["images"]), len(coco["annotations"]), CLASSES)


def _write(folder: Path, *, images: int, image_size: int, seed: int) -> dict:
    rng = random.Random(seed)
    (folder / IMAGES_DIRNAME).mkdir()
    categories = [
        {"id": i, "name": name, "supercategory": "shape"} for i, name in enumerate(CLASSES, 1)
    ]
    category_ids = {c["name"]: c["id"] for c in categories}
    coco: dict = {"info": {"description": "detrain synthetic shapes"}, "licenses": [], "images": []}
    coco["annotations"] = []
    for image_id in range(1, images + 1):
        image, shapes = _image(rng, image_size)
        file_name = f"shapes-{image_id:04d}.png"
        image.save(folder / IMAGES_DIRNAME / file_name, format="PNG")
        coco["images"].append(
            {"id": image_id, "file_name": file_name, "width": image_size, "height": image_size}
        )
        for shape, (x0, y0, x1, y1) in shapes:
            coco["annotations"].append(
                {
                    "id": len(coco["annotations"]) + 1,
                    "image_id": image_id,
                    "category_id": category_ids[shape],
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "area": (x1 - x0) * (y1 - y0),
                    "iscrowd": 0,
                }
            )
    coco["categories"] = categories
    (folder / ANNOTATIONS_FILENAME).write_text(json.dumps(coco, indent=1) + "\n")
    return coco

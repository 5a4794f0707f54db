"""Loading 20,000 images / 200,000 boxes in each format the trainer reads, vs its COCO reader on
the same content, in the same run.

    .venv/bin/python benchmarks/bench_formats.py

One folder holds the images once; COCO (``annotations.json``), YOLO (``data.yaml`` and
``labels/``) and Ground Truth (``output.manifest``) describe the same boxes. Each row is
``trainer.tables.load`` with the full validation (every image's header read, in threads:
COCO and Ground Truth state the sizes and the headers confirm them; YOLO states none and
learns them there, so no image is opened twice). The ratio is each time over COCO's
(target <= 1.5). The YOLO-only step (label files read and parsed) is timed apart.
"""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training_image"))

from trainer import tables
from trainer.formats import yolo
from trainer.formats.common import channel_files

IMAGES, BOXES, CLASSES, WIDTH, HEIGHT = 20_000, 200_000, 80, 640, 480
REPEATS = 2


def _link_images(source: Path, target: Path) -> None:
    target.mkdir()
    for image in source.iterdir():
        os.link(image, target / image.name)


def write_datasets(root: Path) -> dict[str, Path]:
    """The same images and boxes as COCO, YOLO and Ground Truth folders (images hard-linked)."""
    rng = np.random.default_rng(0)
    images_dir = root / "coco" / "images"
    images_dir.mkdir(parents=True)
    buffer = io.BytesIO()
    Image.new("RGB", (WIDTH, HEIGHT), (120, 90, 60)).save(buffer, "JPEG")
    names = [f"{i:06d}.jpg" for i in range(IMAGES)]
    for name in names:
        (images_dir / name).write_bytes(buffer.getvalue())
    xy = rng.uniform(0, [WIDTH - 50, HEIGHT - 50], (BOXES, 2)).round(2)
    wh = rng.uniform(5, 50, (BOXES, 2)).round(2)
    image_of = np.sort(rng.integers(0, IMAGES, BOXES))
    category = rng.integers(0, CLASSES, BOXES)
    classes = [f"class{c}" for c in range(CLASSES)]
    doc = {
        "images": [
            {"id": i + 1, "file_name": n, "width": WIDTH, "height": HEIGHT}
            for i, n in enumerate(names)
        ],
        "annotations": [
            {
                "id": i + 1,
                "image_id": int(image_of[i]) + 1,
                "category_id": int(category[i]) + 1,
                "bbox": [*xy[i].tolist(), *wh[i].tolist()],
                "area": float(wh[i, 0] * wh[i, 1]),
                "iscrowd": 0,
            }
            for i in range(BOXES)
        ],
        "categories": [{"id": c + 1, "name": n} for c, n in enumerate(classes)],
    }
    (root / "coco" / "annotations.json").write_text(json.dumps(doc))

    (root / "yolo" / "labels").mkdir(parents=True)
    _link_images(images_dir, root / "yolo" / "images")
    (root / "yolo" / "data.yaml").write_text(
        yaml.safe_dump({"train": "images", "val": "images", "names": classes})
    )
    centre = (xy + wh / 2) / [WIDTH, HEIGHT]
    size = wh / [WIDTH, HEIGHT]
    starts = np.searchsorted(image_of, np.arange(IMAGES + 1))
    for i, name in enumerate(names):
        rows = range(starts[i], starts[i + 1])
        if len(rows):
            (root / "yolo" / "labels" / (name[:-4] + ".txt")).write_text(
                "".join(
                    f"{category[r]} {centre[r, 0]:.6f} {centre[r, 1]:.6f} "
                    f"{size[r, 0]:.6f} {size[r, 1]:.6f}\n"
                    for r in rows
                )
            )

    (root / "gt").mkdir()
    _link_images(images_dir, root / "gt" / "images")
    class_map = {str(c): n for c, n in enumerate(classes)}
    with (root / "gt" / "output.manifest").open("w") as manifest:
        for i, name in enumerate(names):
            rows = range(starts[i], starts[i + 1])
            line = {
                "source-ref": f"s3://labelling/job/images/{name}",
                "boxes": {
                    "image_size": [{"width": WIDTH, "height": HEIGHT, "depth": 3}],
                    "annotations": [
                        {
                            "class_id": int(category[r]),
                            "left": float(xy[r, 0]),
                            "top": float(xy[r, 1]),
                            "width": float(wh[r, 0]),
                            "height": float(wh[r, 1]),
                        }
                        for r in rows
                    ],
                },
                "boxes-metadata": {
                    "objects": [{"confidence": 1} for _ in rows],
                    "class-map": class_map,
                    "type": "groundtruth/object-detection",
                    "human-annotated": "yes",
                    "creation-date": "2026-11-18T02:53:27",
                    "job-name": "labeling-job/boxes",
                },
            }
            manifest.write(json.dumps(line) + "\n")
    return {"COCO": root / "coco", "YOLO": root / "yolo", "Ground Truth": root / "gt"}


def best_of(function) -> float:
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folders = write_datasets(Path(tmp))
        times = {}
        for name, folder in folders.items():
            table = tables.load(folder)
            assert (len(table), table.num_boxes) == (IMAGES, BOXES), name
            times[name] = best_of(lambda folder=folder: tables.load(folder))
        source = folders["YOLO"] / "data.yaml"
        labels_only = best_of(
            lambda: yolo.read(folders["YOLO"], channel_files(folders["YOLO"]), source, None)
        )

    print(f"{IMAGES} images, {BOXES} boxes, {CLASSES} classes (best of {REPEATS}), full load:")
    for name, seconds in times.items():
        ratio = seconds / times["COCO"]
        print(f"  {name:<13} {seconds:6.2f} s  ratio {ratio:.2f} (target <= 1.5)")
    print(f"  YOLO label files alone (read + parse): {labels_only:6.2f} s")


if __name__ == "__main__":
    main()

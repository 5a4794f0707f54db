"""Loading a COCO file of 20,000 images / 200,000 boxes: the trainer's loader vs pycocotools.

    .venv/bin/python benchmarks/bench_coco_parse.py

Both read the same file from the same folder. ``trainer.tables.load`` does more
than ``pycocotools.COCO`` (class and image-id checks, box validation, existence
of every image file); the ratio is its time over pycocotools' (target <= 1.5).
The header check (each image opened for its header, in threads) is timed apart.
"""

from __future__ import annotations

import io
import json
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training_image"))

from trainer import tables

IMAGES, BOXES, CLASSES, WIDTH, HEIGHT = 20_000, 200_000, 80, 640, 480
REPEATS = 3


def write_dataset(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    images_dir = folder / "images"
    images_dir.mkdir()
    buffer = io.BytesIO()
    Image.new("RGB", (WIDTH, HEIGHT), (120, 90, 60)).save(buffer, "JPEG")
    jpeg = buffer.getvalue()
    images = [
        {"id": i + 1, "file_name": f"{i:06d}.jpg", "width": WIDTH, "height": HEIGHT}
        for i in range(IMAGES)
    ]
    for image in images:
        (images_dir / image["file_name"]).write_bytes(jpeg)
    xy = rng.uniform(0, [WIDTH - 50, HEIGHT - 50], (BOXES, 2)).round(2)
    wh = rng.uniform(5, 50, (BOXES, 2)).round(2)
    image_ids = rng.integers(1, IMAGES + 1, BOXES)
    categories = rng.integers(1, CLASSES + 1, BOXES)
    annotations = [
        {
            "id": i + 1,
            "image_id": int(image_ids[i]),
            "category_id": int(categories[i]),
            "bbox": [*xy[i].tolist(), *wh[i].tolist()],
            "area": float(wh[i, 0] * wh[i, 1]),
            "iscrowd": 0,
        }
        for i in range(BOXES)
    ]
    doc = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": c, "name": f"class{c}"} for c in range(1, CLASSES + 1)],
    }
    path = folder / "annotations.json"
    path.write_text(json.dumps(doc))
    return path


def best_of(function) -> float:
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    from pycocotools.coco import COCO

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = write_dataset(folder)
        size_mb = path.stat().st_size / 1e6

        def baseline():
            with redirect_stdout(io.StringIO()):
                COCO(str(path))

        coco = best_of(baseline)
        ours = best_of(lambda: tables.load(folder, check_images=False))
        full = best_of(lambda: tables.load(folder))
        table = tables.load(folder, check_images=False)
        assert (len(table), table.num_boxes) == (IMAGES, BOXES)

    print(f"COCO file: {IMAGES} images, {BOXES} boxes, {size_mb:.1f} MB (best of {REPEATS})")
    print(f"pycocotools.COCO:                    {coco:6.2f} s")
    ratio = ours / coco
    print(
        f"trainer tables.load (no image opened): {ours:6.2f} s  ratio {ratio:.2f} (target <= 1.5)"
    )
    print(f"trainer tables.load + header check:    {full:6.2f} s  ratio {full / coco:.2f}")


if __name__ == "__main__":
    main()

"""Input pipeline throughput per worker core at 512 px, against a bare decode + resize.

    .venv/bin/python benchmarks/bench_input_pipeline.py [--photos DIR] [--images N] [--rounds R]

"pipeline" is what one DataLoader worker of the trainer does, built from the trainer's own
functions: ``dataset.build`` (IceVision record, decode, flip, resize + pad) and the collate of
``batches.loader`` (uint8 pixels, the family's targets), for every model family. "bare"
decodes the same files with Pillow and resizes the longest side to 512 px with OpenCV (what
the pipeline's resize uses), nothing else. "device_on_cpu" is ``decode_on=device`` with the CPU
as the device (the workers' and the training process's parts, on this one thread). "icevision"
is the path before uint8 batches
(IceVision's Dataset, Normalize in the worker, float32 CHW collate): a same-run before/after.
All run in this process on one thread (a worker's share: torch and OpenCV limited to one
thread), timed in this thread's CPU time, which other processes on a shared machine disturb
far less than wall time; rounds alternate so all see the same noise; the best round counts.
Photos: the JPEGs under --photos (default: the shared COCO sample beside the repository, when
present), each repeated to N files; else generated 640x480 JPEGs.
Last line: ``ratio <pipeline/bare>``, the slowest family's (target >= 0.8).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import PIL.Image
import PIL.ImageOps
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "training_image"))
sys.path.insert(0, str(ROOT))  # tests.support: the generated datasets the tests use

from tests.support.synthetic import write_coco  # noqa: E402
from trainer import batches, dataset, device_decode, tables  # noqa: E402
from trainer.model import model_type  # noqa: E402

IMAGE_SIZE, BATCH = 512, 8
FAMILIES = ("faster_rcnn", "efficientdet")
SHARED_PHOTOS = ROOT.parent / "shared" / "datasets" / "coco-sample"


def photo_channel(photos: Path, folder: Path, count: int) -> None:
    """A COCO channel of ``count`` copies of the JPEGs under ``photos``, 3 boxes each."""
    sources = sorted(p for p in photos.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg"))
    if not sources:
        raise SystemExit(f"no JPEGs under {photos}")
    (folder / "images").mkdir(parents=True)
    doc = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "thing"}]}
    for i in range(count):
        source = sources[i % len(sources)]
        name = f"{i:05d}.jpg"
        shutil.copyfile(source, folder / "images" / name)
        with PIL.Image.open(source) as image:
            width, height = PIL.ImageOps.exif_transpose(image).size
        doc["images"].append({"id": i + 1, "file_name": name, "width": width, "height": height})
        for k in range(3):
            box = [width * k / 4, height * k / 4, width / 4, height / 4]
            doc["annotations"].append(
                {"id": len(doc["annotations"]) + 1, "image_id": i + 1, "category_id": 1,
                 "bbox": box, "area": box[2] * box[3], "iscrowd": 0}
            )  # fmt: skip
    (folder / "annotations.json").write_text(json.dumps(doc))


def bare(paths: list[str]) -> None:
    for path in paths:
        with PIL.Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"))
        height, width = pixels.shape[:2]
        scale = IMAGE_SIZE / max(height, width)
        size = (round(width * scale), round(height * scale))
        cv2.resize(pixels, size, interpolation=cv2.INTER_LINEAR)


def icevision(table):
    """The trainer's pipeline before uint8 batches: IceVision's Dataset (a deep copy per record),
    Normalize in the worker, Faster R-CNN's own collate (float32 CHW)."""
    from icevision import tfms
    from icevision.data.dataset import Dataset

    steps = [tfms.A.HorizontalFlip(p=0.5), *tfms.A.resize_and_pad(IMAGE_SIZE), tfms.A.Normalize()]
    images = Dataset(dataset.Records(table), tfms.A.Adapter(steps))
    return model_type("faster_rcnn").train_dl(images, batch_size=BATCH)


def pipeline(loader) -> None:
    for _ in loader:
        pass


def device_decode_on_cpu(loader) -> None:
    """decode_on=device with the CPU as the device: the worker's part (header, bytes, boxes) and
    the training process's (torchvision's CPU JPEG decoder, torch flip/resize/pad), one thread."""
    for (pixels, _targets), _samples in loader:
        device_decode.decode(pixels, torch.device("cpu"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--photos", type=Path, default=SHARED_PHOTOS if SHARED_PHOTOS.is_dir() else None
    )
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)  # a DataLoader worker's share
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        channel = Path(tmp)
        if args.photos:
            photo_channel(args.photos, channel, args.images)
            source = f"{args.images} copies of the photos in {args.photos}"
        else:
            write_coco(channel, args.images, seed=3, size=(640, 480))
            source = f"{args.images} generated 640x480 JPEGs"
        table = tables.load(channel)
        paths = list(table.paths)
        loaders = {
            family: batches.loader(
                dataset.build(table, IMAGE_SIZE, train=True), family, train=True, batch_size=BATCH
            )
            for family in FAMILIES
        }
        on_device = batches.loader(
            dataset.build(table, IMAGE_SIZE, train=True, decode_on_device=True),
            "efficientdet",
            train=True,
            batch_size=BATCH,
        )
        runs = {
            "bare": lambda: bare(paths),
            "icevision": lambda: pipeline(icevision(table)),
            "device_on_cpu": lambda: device_decode_on_cpu(on_device),
        }
        runs.update({f: (lambda loader=loader: pipeline(loader)) for f, loader in loaders.items()})
        times: dict[str, list[float]] = {name: [] for name in runs}
        for round_ in range(args.rounds + 1):  # the first round warms up (page cache, imports)
            for name, run in runs.items():
                started = time.thread_time()
                run()
                if round_:
                    times[name].append(time.thread_time() - started)
    print(f"{source} -> {IMAGE_SIZE} px, batch {BATCH}, one thread, best of {args.rounds} rounds")
    rate = {name: len(paths) / min(t) for name, t in times.items()}
    for name, t in times.items():
        spread = (max(t) - min(t)) / statistics.median(t)
        print(f"{name:13} {rate[name]:7.1f} img/s per core  (round spread {spread:.0%})")
    print(f"before (IceVision's path) pipeline/bare {rate['icevision'] / rate['bare']:.3f}")
    device_ratio = rate["device_on_cpu"] / rate["bare"]
    print(f"decode_on=device, the CPU as device, pipeline/bare {device_ratio:.3f}")
    ratios = {f: rate[f] / rate["bare"] for f in FAMILIES}
    for family, value in ratios.items():
        print(f"{family:13} pipeline/bare {value:.3f}")
    print(f"ratio {min(ratios.values()):.3f}")


if __name__ == "__main__":
    main()

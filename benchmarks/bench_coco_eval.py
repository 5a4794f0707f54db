"""COCO evaluation: pycocotools' COCOeval against faster-coco-eval, same predictions.

    .venv/bin/python benchmarks/bench_coco_eval.py [--images N] [--rounds R]

A realistic validation pass: N images (default 2,000) with 1-12 ground-truth boxes of 10
classes each, and 100 detections per image (what EfficientDet and torchvision's detectors
return at threshold 0): noisy copies of the truth boxes (some with the wrong class) plus
background boxes, scores skewed towards the good ones. Both evaluators run the trainer's own
path (``trainer.evaluation.evaluate``: COCO index, loadRes, evaluate, accumulate, summarize)
on the same documents; the 12 statistics must agree to 1e-6. Rounds alternate; the best of
each counts (process CPU time and wall time). Last line: ``ratio <pycocotools/faster>``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "training_image"))

from trainer.evaluation import coco_documents, evaluate  # noqa: E402

CLASSES, DETECTIONS, SIZE = 10, 100, 512.0
NAMES = ("pycocotools", "faster_coco_eval")


def validation_set(images: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    truths, predictions = [], []
    for _ in range(images):
        count = int(rng.integers(1, 13))
        xy = rng.uniform(0, SIZE * 0.8, (count, 2))
        wh = rng.uniform(8, SIZE * 0.4, (count, 2))
        boxes = np.concatenate([xy, np.minimum(xy + wh, SIZE)], 1).astype(np.float32)
        labels = rng.integers(1, CLASSES + 1, count)
        truths.append((boxes, labels))
        found = rng.random(count) < 0.8
        near = boxes[found] + rng.normal(0, 6, (found.sum(), 4)).astype(np.float32)
        near_labels = np.where(rng.random(found.sum()) < 0.9, labels[found], rng.integers(1, 11))
        rest = DETECTIONS - len(near)
        xy = rng.uniform(0, SIZE * 0.9, (rest, 2))
        background = np.concatenate([xy, xy + rng.uniform(4, 100, (rest, 2))], 1)
        det_boxes = np.concatenate([near, background.astype(np.float32)]).clip(0, SIZE)
        det_labels = np.concatenate([near_labels, rng.integers(1, CLASSES + 1, rest)])
        scores = np.concatenate([rng.beta(5, 2, len(near)), rng.beta(1, 6, rest)])
        predictions.append((det_boxes, scores.astype(np.float32), det_labels))
    return truths, predictions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    ground, detections = coco_documents(*validation_set(args.images), CLASSES)
    cpu: dict[str, list[float]] = {n: [] for n in NAMES}
    wall: dict[str, list[float]] = {n: [] for n in NAMES}
    stats = {}
    for _ in range(args.rounds):
        for name in NAMES:
            started, started_cpu = time.perf_counter(), time.process_time()
            stats[name] = evaluate(ground, detections, name)
            cpu[name].append(time.process_time() - started_cpu)
            wall[name].append(time.perf_counter() - started)
    difference = np.abs(stats["pycocotools"] - stats["faster_coco_eval"])
    print(
        f"{args.images} images, {len(ground['annotations'])} truth boxes, "
        f"{len(detections)} detections, {CLASSES} classes; best of {args.rounds} rounds"
    )
    for name in NAMES:
        print(
            f"{name:17} {min(cpu[name]):7.2f} s CPU  {min(wall[name]):7.2f} s wall  "
            f"(CPU rounds {', '.join(f'{t:.2f}' for t in cpu[name])})"
        )
    print("pycocotools      ", np.round(stats["pycocotools"], 6).tolist())
    print("faster_coco_eval ", np.round(stats["faster_coco_eval"], 6).tolist())
    verdict = "equal" if difference.max() <= 1e-6 else "DIFFERENT"
    print(f"12 statistics {verdict}: largest difference {difference.max():.2e}")
    print(f"wall ratio {min(wall['pycocotools']) / min(wall['faster_coco_eval']):.2f}")
    print(f"ratio {min(cpu['pycocotools']) / min(cpu['faster_coco_eval']):.2f}")


if __name__ == "__main__":
    main()

"""COCO box mAP of a validation pass, computed by faster-coco-eval (C++), pycocotools' numbers.

faster-coco-eval reimplements pycocotools' ``COCOeval``; on the same predictions its 12 summary
statistics equal pycocotools' (tests/trainer/test_evaluation.py, benchmarks/bench_coco_eval.py),
several times faster. ``coco_stats(..., library=pycocotools)`` runs the reference.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np

Truths = list[tuple[np.ndarray, np.ndarray]]  # per image: xyxy boxes, 1-based labels
Predictions = list[tuple[np.ndarray, np.ndarray, np.ndarray]]  # per image: boxes, scores, labels


def coco_documents(truths: Truths, predictions: Predictions, num_classes: int):
    """The ground-truth COCO document and the detection list, xyxy boxes made xywh."""
    images, annotations, detections = [], [], []
    for image_id, ((gt_boxes, gt_labels), (boxes, scores, labels)) in enumerate(
        zip(truths, predictions, strict=True)
    ):
        images.append({"id": image_id})
        for box, label in zip(gt_boxes.tolist(), gt_labels.tolist(), strict=True):
            w, h = box[2] - box[0], box[3] - box[1]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": label,
                    "bbox": [box[0], box[1], w, h],
                    "area": w * h,
                    "iscrowd": 0,
                }
            )
        for box, score, label in zip(boxes.tolist(), scores.tolist(), labels.tolist(), strict=True):
            detections.append(
                {
                    "image_id": image_id,
                    "category_id": int(label),
                    "score": score,
                    "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]],
                }
            )
    ground = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i} for i in range(1, num_classes + 1)],
    }
    return ground, detections


def _library(name: str) -> tuple[type, type]:
    if name == "faster_coco_eval":
        from faster_coco_eval import COCO, COCOeval_faster

        return COCO, COCOeval_faster
    if name == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        return COCO, COCOeval
    raise ValueError(f"COCO evaluator {name!r} is unknown; allowed: faster_coco_eval, pycocotools")


def evaluate(ground: dict, detections: list, library: str = "faster_coco_eval") -> np.ndarray:
    """COCOeval's 12 box statistics (AP@[.5:.95], AP@.5, ..., AR@100 large)."""
    coco, cocoeval = _library(library)
    with contextlib.redirect_stdout(io.StringIO()):
        truth = coco()
        truth.dataset = ground
        truth.createIndex()
        evaluation = cocoeval(truth, truth.loadRes(detections), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return np.asarray(evaluation.stats, dtype=np.float64)


def coco_map(
    truths: Truths, predictions: Predictions, num_classes: int, library: str = "faster_coco_eval"
) -> tuple[float, float]:
    """COCO mAP@[.5:.95] and mAP@.5 of xyxy boxes; 0.0 when nothing was found."""
    ground, detections = coco_documents(truths, predictions, num_classes)
    if not ground["annotations"] or not detections:
        return 0.0, 0.0
    stats = evaluate(ground, detections, library)
    return max(float(stats[0]), 0.0), max(float(stats[1]), 0.0)

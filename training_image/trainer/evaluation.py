"""How good the detections are: the epoch's COCO mAP, and the report's per-class and per-image view.

The mAP of a validation pass is computed by faster-coco-eval (C++), which reimplements
pycocotools' ``COCOeval``: on the same predictions its 12 summary statistics equal pycocotools'
(tests/trainer/test_evaluation.py, benchmarks/bench_coco_eval.py), several times faster;
``library="pycocotools"`` runs the reference. The job report's per-class AP and
precision/recall come from the same documents through pycocotools' ``accumulate`` arrays; the
per-image counts from a greedy match at IoU 0.5, highest score first (COCO's rule), at the
score threshold with the best F1 over the whole set. Boxes are xyxy, labels 1-based.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from dataclasses import dataclass

import numpy as np

# faster-coco-eval logs its 12-line summary at INFO on every call: the job's log keeps the
# metric line instead (contract/metrics.py).
logging.getLogger("faster_coco_eval").setLevel(logging.WARNING)

IOU_MATCH = 0.5
DEFAULT_THRESHOLD = 0.5

Truth = tuple[np.ndarray, np.ndarray]  # boxes (n, 4), labels (n,)
Prediction = tuple[np.ndarray, np.ndarray, np.ndarray]  # boxes (m, 4), scores (m,), labels (m,)
Truths = list[Truth]
Predictions = list[Prediction]


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
                    "category_id": int(label),
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
                    "score": float(score),
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


def _accumulated(ground: dict, detections: list, library: str, summarize: bool = False):
    coco, cocoeval = _library(library)
    with contextlib.redirect_stdout(io.StringIO()):
        truth = coco()
        truth.dataset = ground
        truth.createIndex()
        evaluation = cocoeval(truth, truth.loadRes(detections), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        if summarize:
            evaluation.summarize()
    return evaluation


def evaluate(ground: dict, detections: list, library: str = "faster_coco_eval") -> np.ndarray:
    """COCOeval's 12 box statistics (AP@[.5:.95], AP@.5, ..., AR@100 large)."""
    evaluation = _accumulated(ground, detections, library, summarize=True)
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


@dataclass(frozen=True)
class ClassScores:
    """Per class (index 0 is class 1): AP@[.5:.95], AP@.5 (nan: no box in validation), PR at .5."""

    ap: np.ndarray
    ap_50: np.ndarray
    recall: np.ndarray  # (101,) COCO's recall thresholds
    precision_50: np.ndarray  # (101, classes); nan where undefined


@dataclass(frozen=True)
class ImageOutcome:
    truths: int
    found: int  # ground-truth boxes matched by a prediction at or above the threshold
    false: int  # predictions at or above the threshold that match nothing

    @property
    def missed(self) -> int:
        return self.truths - self.found


def class_scores(truths: list[Truth], predictions: list[Prediction], classes: int) -> ClassScores:
    recall = np.linspace(0.0, 1.0, 101)
    has_truth = np.zeros(classes, bool)
    for _, labels in truths:
        has_truth[labels[(labels >= 1) & (labels <= classes)] - 1] = True
    if not any(len(p[0]) for p in predictions) or not has_truth.any():
        zeros = np.where(has_truth, 0.0, np.nan)
        return ClassScores(zeros, zeros.copy(), recall, np.full((101, classes), np.nan))
    evaluation = _accumulated(*coco_documents(truths, predictions, classes), "pycocotools")
    precision = evaluation.eval["precision"][:, :, :, 0, -1]  # (iou, recall, class), all areas
    precision = np.where(precision < 0, np.nan, precision)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the mean of a class never detected
        ap, ap_50 = np.nanmean(precision, axis=(0, 1)), np.nanmean(precision[0], axis=0)
    # A class with boxes but no detection scores 0; one without boxes has no score (nan).
    ap = np.where(has_truth, np.nan_to_num(ap), np.nan)
    ap_50 = np.where(has_truth, np.nan_to_num(ap_50), np.nan)
    return ClassScores(ap, ap_50, recall, precision[0])


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of xyxy boxes: (len(a), len(b))."""
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def match(truth: Truth, prediction: Prediction) -> np.ndarray:
    """For each prediction (in the given order), whether it matches a ground-truth box."""
    gt_boxes, gt_labels = truth
    boxes, scores, labels = prediction
    matched = np.zeros(len(boxes), bool)
    if not len(boxes) or not len(gt_boxes):
        return matched
    overlaps = iou(boxes, gt_boxes)
    overlaps[labels[:, None] != gt_labels[None, :]] = 0.0
    taken = np.zeros(len(gt_boxes), bool)
    for i in np.argsort(-scores, kind="stable"):
        candidates = np.where(taken, 0.0, overlaps[i])
        best = int(np.argmax(candidates))
        if candidates[best] >= IOU_MATCH:
            taken[best], matched[i] = True, True
    return matched


def best_f1_threshold(truths: list[Truth], predictions: list[Prediction]) -> float:
    """The score threshold with the best F1 at IoU 0.5 over all images (0.5 when undefined)."""
    total = sum(len(t[0]) for t in truths)
    scores = np.concatenate([p[1] for p in predictions]) if predictions else np.zeros(0)
    if not total or not len(scores):
        return DEFAULT_THRESHOLD
    hits = np.concatenate([match(t, p) for t, p in zip(truths, predictions, strict=True)])
    order = np.argsort(-scores, kind="stable")
    true_positives = np.cumsum(hits[order])
    precision = true_positives / np.arange(1, len(order) + 1)
    recall = true_positives / total
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-9)
    return float(scores[order][int(np.argmax(f1))])


def outcomes(
    truths: list[Truth], predictions: list[Prediction], threshold: float
) -> list[ImageOutcome]:
    found = []
    for truth, prediction in zip(truths, predictions, strict=True):
        hits = match(truth, prediction)
        kept = prediction[1] >= threshold
        found.append(
            ImageOutcome(len(truth[0]), int((hits & kept).sum()), int((~hits & kept).sum()))
        )
    return found

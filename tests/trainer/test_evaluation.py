"""faster-coco-eval gives pycocotools' numbers on the same predictions."""

import numpy as np
import pytest

from trainer import evaluation


def validation_set(images: int = 60, classes: int = 3, seed: int = 7):
    """Truth boxes, and detections near them (some mislabelled) plus background boxes."""
    rng = np.random.default_rng(seed)
    truths, predictions = [], []
    for _ in range(images):
        count = int(rng.integers(1, 6))
        xy = rng.uniform(0, 200, (count, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(4, 120, (count, 2))], 1).astype(np.float32)
        labels = rng.integers(1, classes + 1, count)
        truths.append((boxes, labels))
        near = boxes + rng.normal(0, 5, boxes.shape).astype(np.float32)
        flipped = np.where(rng.random(count) < 0.8, labels, rng.integers(1, classes + 1, count))
        xy = rng.uniform(0, 250, (20, 2))
        extra = np.concatenate([xy, xy + rng.uniform(2, 60, (20, 2))], 1).astype(np.float32)
        scores = np.concatenate([rng.beta(5, 2, count), rng.beta(1, 5, 20)]).astype(np.float32)
        det_labels = np.concatenate([flipped, rng.integers(1, classes + 1, 20)])
        predictions.append((np.concatenate([near, extra]), scores, det_labels))
    return truths, predictions, classes


def test_all_twelve_statistics_equal_pycocotools():
    ground, detections = evaluation.coco_documents(*validation_set())
    reference = evaluation.evaluate(ground, detections, "pycocotools")
    fast = evaluation.evaluate(ground, detections, "faster_coco_eval")
    assert 0.05 < reference[0] < 0.95  # a set that tells evaluators apart, not all 0 or 1
    np.testing.assert_allclose(fast, reference, rtol=0, atol=1e-9)


def test_coco_map_uses_the_fast_evaluator_with_the_same_result():
    truths, predictions, classes = validation_set(images=20, seed=3)
    fast = evaluation.coco_map(truths, predictions, classes)
    assert fast == pytest.approx(evaluation.coco_map(truths, predictions, classes, "pycocotools"))


def test_an_unknown_evaluator_is_refused():
    with pytest.raises(ValueError, match="'detectron' is unknown; allowed: faster_coco_eval"):
        evaluation.evaluate({}, [], "detectron")

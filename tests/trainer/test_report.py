"""The job report, built in-process from datasets the trainer reads and made-up detections."""

import json
import logging
import math
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from tests.support.synthetic import write_coco, write_voc
from trainer import evaluation, report, tables

HISTORY = [
    {"epoch": 1, "train_loss": 2.0, "valid_loss": 1.8, "valid_map": 0.1, "valid_map_50": 0.2,
     "lr": 0.01, "epoch_seconds": 3.0},
    {"epoch": 2, "train_loss": 1.5, "valid_loss": 1.4, "valid_map": 0.3, "valid_map_50": 0.5,
     "lr": 0.005, "epoch_seconds": 3.1},
    {"epoch": 3, "train_loss": 1.2, "valid_loss": 1.5, "valid_map": 0.25, "valid_map_50": 0.45,
     "lr": 0.0, "epoch_seconds": 2.9},
]  # fmt: skip
MODEL_EPOCH = {"metric": "valid_map", "epoch": 2, "score": 0.3, "metrics": HISTORY[1]}


def _predictions(table: tables.DetectionTable, seed: int = 0) -> list[evaluation.Prediction]:
    """Each true box found, shifted a little, except every second; one false box per image."""
    rng = np.random.default_rng(seed)
    found = []
    for i in range(len(table)):
        boxes, labels = table.annotations(i)
        keep = np.arange(len(boxes)) % 2 == 0
        shifted = boxes[keep] + rng.normal(0, 1.5, (int(keep.sum()), 4)).astype(np.float32)
        false = np.array([[1, 1, 20, 20]], np.float32)
        found.append(
            (
                np.concatenate([shifted, false]),
                np.concatenate([rng.uniform(0.5, 1.0, len(shifted)), [0.3]]).astype(np.float32),
                np.concatenate([labels[keep], [1]]).astype(np.int64),
            )
        )
    return found


def _inputs(train, valid, predictions=None) -> report.ReportInputs:
    return report.ReportInputs(
        job_name="detrain-test-job",
        train_table=train,
        valid_table=valid,
        predictions=_predictions(valid) if predictions is None else predictions,
        history=HISTORY,
        model_epoch=MODEL_EPOCH,
        hyperparameters={"model": "efficientdet", "epochs": 3},
        timings={"setup": 1.0, "epochs": 9.0},
    )


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.references, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.references += [v for k, v in attrs if k in ("src", "href", "srcset", "action")]


def assert_self_contained(page: Path) -> _Links:
    text = page.read_text(encoding="utf-8")
    parsed = _Links()
    parsed.feed(text)
    assert parsed.references, "the report shows no image"
    assert all(r.startswith("data:image/") for r in parsed.references), [
        r[:80] for r in parsed.references
    ]
    outside_images = re.sub(r"data:image/(png|jpeg);base64,[A-Za-z0-9+/=]+", "", text)
    assert "//" not in outside_images and "url(" not in outside_images  # no URL of any kind
    assert "script" not in parsed.tags and "link" not in parsed.tags
    return parsed


@pytest.mark.parametrize("writer", [write_coco, write_voc])
def test_report_for_coco_and_voc(tmp_path, writer):
    writer(tmp_path / "data", 16)
    train, valid = tables.split(tables.load(tmp_path / "data"), 0.5, seed=1)

    page = report.write(tmp_path / "out", _inputs(train, valid))

    assert page == tmp_path / "out" / "report.html"
    parsed = assert_self_contained(page)
    pictures = sorted(p.name for p in (tmp_path / "out").iterdir() if p.suffix != ".html")
    assert pictures == [
        "report_classes.png",
        "report_curves.png",
        "report_dataset.png",
        "report_images_best.jpg",
        "report_images_random.jpg",
        "report_images_worst.jpg",
        "report_pr_curves.png",
    ]
    assert len(parsed.references) == len(pictures)
    text = page.read_text()
    assert "the model is epoch 2's: valid_map 0.3000" in text
    for heading in (
        "Per class, weakest first",
        "The worst: most boxes missed, then most false",
        "A random sample",
        "Precision and recall at IoU 0.5",
        "Hyperparameters",
        "Where the time went",
    ):
        assert heading in text
    assert page.stat().st_size < 3_000_000


def test_per_class_scores_put_the_weakest_first(tmp_path):
    write_coco(tmp_path / "data", 12)
    table = tables.load(tmp_path / "data")
    truths = [table.annotations(i) for i in range(len(table))]
    perfect = [(b, np.ones(len(b), np.float32), labels) for b, labels in truths]
    # class 2 ("green") is never predicted: AP 0; class 1 is perfect: AP 1
    only_red = [(b[c == 1], s[c == 1], c[c == 1]) for b, s, c in perfect]

    scores = evaluation.class_scores(truths, only_red, 2)
    page = report.write(tmp_path / "out", _inputs(table, table, only_red))

    assert scores.ap.tolist() == pytest.approx([1.0, 0.0])
    assert scores.ap_50.tolist() == pytest.approx([1.0, 0.0])
    rows = page.read_text().split("<th>valid boxes</th></tr>")[1]
    assert rows.index(">green<") < rows.index(">red<")


def test_report_for_one_class(tmp_path):
    write_coco(tmp_path / "data", 10)
    annotations = tmp_path / "data" / "annotations.json"
    doc = json.loads(annotations.read_text())
    doc["categories"] = [{"id": 1, "name": "shape"}]
    for annotation in doc["annotations"]:
        annotation["category_id"] = 1
    annotations.write_text(json.dumps(doc))
    train, valid = tables.split(tables.load(tmp_path / "data"), 0.4, seed=0)

    page = report.write(tmp_path / "out", _inputs(train, valid))

    assert_self_contained(page)
    assert ">shape<" in page.read_text()


def test_report_for_validation_images_without_boxes(tmp_path):
    write_coco(tmp_path / "data", 6)
    annotations = tmp_path / "data" / "annotations.json"
    doc = json.loads(annotations.read_text())
    for extra in range(3):  # three images with nothing to find
        name = f"empty_{extra}.jpg"
        shutil.copy(
            tmp_path / "data" / "images" / "img_0001.jpg", tmp_path / "data" / "images" / name
        )
        doc["images"].append({"id": 100 + extra, "file_name": name, "width": 96, "height": 80})
    annotations.write_text(json.dumps(doc))
    table = tables.load(tmp_path / "data")
    empty = table.subset(np.flatnonzero(np.diff(table.offsets) == 0))
    assert len(empty) == 3 and empty.num_boxes == 0

    page = report.write(tmp_path / "out", _inputs(table, empty))

    assert_self_contained(page)
    assert "3 of 3 validation images have no labelled boxes" in page.read_text()
    scores = evaluation.class_scores(
        [empty.annotations(i) for i in range(3)], _predictions(empty), 2
    )
    assert all(math.isnan(v) for v in scores.ap)


def test_a_failing_report_is_a_warning(tmp_path, caplog):
    def broken():
        raise ValueError("no predictions")

    with caplog.at_level(logging.WARNING):
        assert report.write_safely(tmp_path, broken) is None

    assert "the job report was not written (ValueError: no predictions)" in caplog.text


def test_match_and_threshold():
    truth = (np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32), np.array([1, 2]))
    prediction = (
        np.array([[0, 0, 10, 11], [0, 0, 10, 10], [20, 20, 30, 30]], np.float32),
        np.array([0.9, 0.8, 0.4], np.float32),
        np.array([1, 1, 1]),  # the third is in the right place with the wrong class
    )

    assert evaluation.match(truth, prediction).tolist() == [True, False, False]
    assert evaluation.best_f1_threshold([truth], [prediction]) == pytest.approx(0.9)
    [outcome] = evaluation.outcomes([truth], [prediction], 0.5)
    assert (outcome.found, outcome.missed, outcome.false) == (1, 1, 1)

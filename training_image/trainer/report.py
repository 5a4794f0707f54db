"""The job report: ``report.html`` and the pictures it shows, in /opt/ml/output/data.

Written once, at the end, by rank 0, from the model that ships (the best epoch's): its
predictions on the validation images, scored per class with pycocotools and per image by
matching boxes at IoU 0.5. The HTML is self-contained (images inline as base64, styles
inline, no script, no URL), so it opens from output.tar.gz anywhere, offline.
A failure here is logged and never fails a job that trained (``write_safely``).
"""

from __future__ import annotations

import base64
import html
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from contract.outputs import REPORT_FILE
from trainer import evaluation, report_figures
from trainer.evaluation import Prediction, Truth
from trainer.tables import DetectionTable

log = logging.getLogger(__name__)

SEED = 0
MAX_TABLE_CLASSES = 500
NO_VALUE = "-"


@dataclass(frozen=True)
class ReportInputs:
    """Everything the report shows; predictions are per validation image, in its own pixels."""

    job_name: str
    train_table: DetectionTable
    valid_table: DetectionTable
    predictions: list[Prediction]
    history: Sequence[Mapping[str, float]]
    model_epoch: Mapping[str, Any]  # selection.Selection.summary()
    hyperparameters: Mapping[str, Any]
    timings: Mapping[str, float]  # phase -> seconds


# ---- predictions of the model that ships


def predict(model, batches, table: DetectionTable, device) -> list[Prediction]:
    """The model's detections on every image of ``table`` (its validation loader's order)."""
    found: dict[int, Prediction] = {}
    for batch, records in batches:
        _, predictions = model.validate(batch, records, device)
        for record, (boxes, scores, labels) in zip(records, predictions, strict=True):
            index = int(record.record_id)
            boxes = _to_image_pixels(boxes, table.widths[index], table.heights[index], model)
            found[index] = (boxes, scores.astype(np.float32), labels.astype(np.int64))
    model.module.train()
    empty = (np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))
    return [found.get(i, empty) for i in range(len(table))]


def _to_image_pixels(boxes: np.ndarray, width: int, height: int, model) -> np.ndarray:
    """Undo the validation transform: longest side to image_size, padded to a centred square."""
    size = model.image_size
    scale = size / max(width, height)
    new_width, new_height = max(1, round(width * scale)), max(1, round(height * scale))
    left, top = (size - new_width) // 2, (size - new_height) // 2
    mapped = (boxes.reshape(-1, 4) - np.array([left, top, left, top])) / scale
    return np.clip(mapped, 0, [width, height, width, height]).astype(np.float32)


# ---- the report


def write_safely(output_dir: Path, inputs_factory) -> Path | None:
    """Build the inputs and write the report; any failure is a warning, never the job's."""
    started = time.monotonic()  # the predictions count as the report's time
    try:
        return write(output_dir, inputs_factory(), started=started)
    except Exception as error:  # the report is a bonus: the model is already saved
        log.warning(
            "the job report was not written (%s: %s)", type(error).__name__, error, exc_info=True
        )
        return None


def _truths(table: DetectionTable) -> list[Truth]:
    return [table.annotations(i) for i in range(len(table))]


def _box_sizes(table: DetectionTable) -> np.ndarray:
    sides = table.boxes[:, 2:] - table.boxes[:, :2]
    return np.sqrt(np.prod(np.clip(sides, 0, None), axis=1))


def _counts(table: DetectionTable, classes: int) -> np.ndarray:
    return np.bincount(table.labels, minlength=classes + 1)[1 : classes + 1]


def write(output_dir: Path, inputs: ReportInputs, *, started: float | None = None) -> Path:
    """report.html and its pictures in ``output_dir``; ``started``: when its work began."""
    started = time.monotonic() if started is None else started
    names = list(inputs.train_table.class_names)
    truths = _truths(inputs.valid_table)
    scores = evaluation.class_scores(truths, inputs.predictions, len(names))
    threshold = evaluation.best_f1_threshold(truths, inputs.predictions)
    outcomes = evaluation.outcomes(truths, inputs.predictions, threshold)
    weakest = sorted(range(len(names)), key=lambda k: (math.isnan(scores.ap[k]), scores.ap[k]))
    train_counts = _counts(inputs.train_table, len(names))
    valid_counts = _counts(inputs.valid_table, len(names))

    pictures: dict[str, bytes] = {}
    if inputs.history:
        pictures["report_curves.png"] = report_figures.curves(
            inputs.history, str(inputs.model_epoch.get("metric")), int(inputs.model_epoch["epoch"])
        )
    ordered = [names[k] for k in weakest]
    pictures["report_classes.png"] = report_figures.class_bars(
        ordered, scores.ap[weakest], scores.ap_50[weakest]
    )
    pictures["report_pr_curves.png"] = report_figures.pr_curves(
        ordered, scores.recall, scores.precision_50[:, weakest], scores.ap_50[weakest]
    )
    pictures["report_dataset.png"] = report_figures.dataset_summary(
        names,
        train_counts,
        valid_counts,
        _box_sizes(inputs.train_table),
        _box_sizes(inputs.valid_table),
    )
    groups = _image_groups(outcomes)
    for group, indices in groups.items():
        tiles = [
            (
                report_figures.draw_thumbnail(
                    inputs.valid_table.paths[i], truths[i], inputs.predictions[i], names, threshold
                ),
                f"{Path(inputs.valid_table.paths[i]).name}: found {outcomes[i].found}/"
                f"{outcomes[i].truths}, {outcomes[i].false} false",
            )
            for i in indices
        ]
        if tiles:
            pictures[f"report_images_{group}.jpg"] = report_figures.grid(tiles)

    output_dir.mkdir(parents=True, exist_ok=True)
    for name, data in pictures.items():
        (output_dir / name).write_bytes(data)
    timings = {**inputs.timings, "evaluation and report": time.monotonic() - started}
    page = _html(
        inputs,
        names,
        scores,
        weakest,
        train_counts,
        valid_counts,
        threshold,
        outcomes,
        pictures,
        timings,
    )
    target = output_dir / REPORT_FILE
    temporary = output_dir / f".{REPORT_FILE}.tmp"
    temporary.write_text(page, encoding="utf-8")
    temporary.replace(target)
    log.info("job report: %s (%d KB)", target, target.stat().st_size // 1024)
    return target


def _image_groups(outcomes: list[evaluation.ImageOutcome]) -> dict[str, list[int]]:
    """The best (nothing missed, fewest false), the worst (most missed) and a random sample."""
    count = report_figures.GRID
    indices = list(range(len(outcomes)))
    worst = sorted(indices, key=lambda i: (-outcomes[i].missed, -outcomes[i].false))
    worst = [i for i in worst if outcomes[i].missed or outcomes[i].false][:count]
    best = sorted(
        indices, key=lambda i: (outcomes[i].missed, outcomes[i].false, -outcomes[i].found)
    )
    best = [i for i in best if i not in worst and outcomes[i].found][:count]
    shown = set(worst + best)
    rest = [i for i in indices if i not in shown]
    pool = rest if len(rest) >= count else indices  # a small set: sampled from all its images
    rng = np.random.default_rng(SEED)
    sample = sorted(rng.choice(pool, size=min(count, len(pool)), replace=False).tolist())
    return {"best": best, "worst": worst, "random": sample}


# ---- HTML

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;
max-width:1180px;padding:0 16px;color:#222;line-height:1.4}
h1{font-size:1.5em;margin-bottom:4px}
h2{font-size:1.2em;margin-top:32px;border-bottom:1px solid #ddd}
.sub{color:#666;margin-top:0}.facts{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
.fact{background:#f4f6f8;border-radius:6px;padding:8px 14px}.fact b{display:block;font-size:1.3em}
table{border-collapse:collapse;font-size:.9em;margin:8px 0}
td,th{border-bottom:1px solid #e4e4e4;padding:3px 10px;text-align:right}
td:first-child,th:first-child{text-align:left}th{background:#f4f6f8}
img{max-width:100%;height:auto;border:1px solid #eee}.note{color:#555;font-size:.9em}
.weak{color:#b00020}.cols{display:flex;flex-wrap:wrap;gap:32px;align-items:flex-start}
"""


def _img(pictures: Mapping[str, bytes], name: str, alt: str) -> str:
    if name not in pictures:
        return f'<p class="note">({html.escape(alt)}: nothing to show)</p>'
    kind = "jpeg" if name.endswith(".jpg") else "png"
    data = base64.b64encode(pictures[name]).decode()
    return f'<img src="data:image/{kind};base64,{data}" alt="{html.escape(alt)}">'


def _number(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NO_VALUE
    return f"{value:.{digits}f}" if isinstance(value, float) else html.escape(str(value))


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _html(
    inputs,
    names,
    scores,
    weakest,
    train_counts,
    valid_counts,
    threshold,
    outcomes,
    pictures,
    timings,
) -> str:
    e = html.escape
    chosen = inputs.model_epoch
    metric, epoch = str(chosen.get("metric")), int(chosen.get("epoch") or 0)
    last = inputs.history[-1] if inputs.history else {}
    if epoch:
        model_line = f"the model is epoch {epoch}'s: {e(metric)} {_number(chosen.get('score'), 4)}"
    else:
        model_line = "no epoch scored: the model is the last epoch's"
    if chosen.get("early_stopped"):
        model_line += f"; training stopped early after epoch {int(last.get('epoch', 0))}"
    found = sum(o.found for o in outcomes)
    truths = sum(o.truths for o in outcomes)
    empty_images = sum(1 for o in outcomes if not o.truths)
    facts = [
        ("model epoch", f"{epoch or NO_VALUE} of {int(last.get('epoch', 0))}"),
        (f"validation {metric}", _number(chosen.get("score"), 4)),
        ("validation mAP@.5", _number((chosen.get("metrics") or {}).get("valid_map_50"), 4)),
        ("boxes found", f"{found} / {truths}"),
        ("images train / valid", f"{len(inputs.train_table)} / {len(inputs.valid_table)}"),
        ("classes", str(len(names))),
    ]
    class_rows = [
        [
            f'<span class="{"weak" if scores.ap_50[k] < 0.5 else ""}">{e(names[k])}</span>',
            _number(float(scores.ap[k])),
            _number(float(scores.ap_50[k])),
            str(int(train_counts[k])),
            str(int(valid_counts[k])),
        ]
        for k in weakest[:MAX_TABLE_CLASSES]
    ]
    hyper_rows = [[e(k), e(str(v))] for k, v in inputs.hyperparameters.items()]
    total = sum(timings.values())
    time_rows = [
        [e(k), _duration(v), f"{100 * v / total:.0f}%" if total else NO_VALUE]
        for k, v in timings.items()
    ]
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        f"<title>detrain report: {e(inputs.job_name)}</title><style>{_STYLE}</style></head><body>",
        f'<h1>{e(inputs.job_name)}</h1><p class="sub">{model_line}</p>',
        '<div class="facts">',
        *(f'<div class="fact">{e(k)}<b>{v}</b></div>' for k, v in facts),
        "</div>",
        "<h2>Training curves</h2>",
        _img(pictures, "report_curves.png", "loss and mAP per epoch"),
        "<h2>Per class, weakest first</h2>",
        '<div class="cols"><div>',
        _img(pictures, "report_classes.png", "AP per class"),
        "</div><div>",
        _table(["class", "AP", "AP50", "train boxes", "valid boxes"], class_rows),
        "</div></div>",
        "<h2>Validation images</h2>",
        f'<p class="note">{e(report_figures.legend_note(threshold))}. '
        f"{empty_images} of {len(outcomes)} validation images have no labelled boxes.</p>",
    ]
    for group, title in (
        ("best", "The best: fewest boxes missed, then fewest false detections"),
        ("worst", "The worst: most boxes missed, then most false detections"),
        ("random", "A random sample"),
    ):
        parts += [f"<h3>{e(title)}</h3>", _img(pictures, f"report_images_{group}.jpg", title)]
    parts += [
        "<h2>Precision and recall at IoU 0.5, per class</h2>",
        _img(pictures, "report_pr_curves.png", "precision/recall per class"),
        "<h2>Dataset</h2>",
        f'<p class="note">{len(inputs.train_table)} training images with '
        f"{inputs.train_table.num_boxes} boxes; {len(inputs.valid_table)} validation images "
        f"with {inputs.valid_table.num_boxes} boxes.</p>",
        _img(pictures, "report_dataset.png", "boxes per class and box sizes"),
        '<div class="cols"><div><h2>Hyperparameters</h2>',
        _table(["name", "value"], hyper_rows),
        "</div><div><h2>Where the time went</h2>",
        _table(["phase", "time", "share"], time_rows),
        "</div></div></body></html>",
    ]
    return "\n".join(parts)

"""The job report's pictures, as encoded bytes: matplotlib charts (PNG) and image grids (JPEG).

Every function returns the file's bytes; sizes are capped (charts of at most ``MAX_CLASSES``
classes, grids of at most ``GRID`` thumbnails of ``THUMBNAIL`` pixels), so the report stays a
few MB whatever the dataset's size.
"""

from __future__ import annotations

import io
import itertools
import math
from collections.abc import Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from trainer.images import read_rgb

MAX_CLASSES = 30  # bars shown in a chart (the weakest); the table lists them all
MAX_CURVES = 12  # precision/recall panels (the weakest classes)
GRID = 6
THUMBNAIL = 360
MAX_UPSCALE = 4.0
TRUTH_COLOURS = ((255, 255, 255), (0, 0, 0))
PREDICTION_COLOURS = [
    (255, 64, 129),
    (41, 121, 255),
    (255, 145, 0),
    (170, 0, 255),
    (0, 184, 212),
    (255, 214, 0),
    (213, 0, 0),
    (100, 221, 23),
]


def _figure(width: float, height: float):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100)


def _png(figure) -> bytes:
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def curves(history: Sequence[Mapping[str, float]], metric: str, best_epoch: int) -> bytes:
    """Loss and mAP per epoch, the chosen epoch marked."""
    epochs = [row["epoch"] for row in history]
    figure = _figure(10, 3.6)
    loss_axes, map_axes = figure.subplots(1, 2)
    for key in ("train_loss", "valid_loss"):
        loss_axes.plot(epochs, [row[key] for row in history], marker="o", ms=3, label=key)
    for key in ("valid_map", "valid_map_50"):
        map_axes.plot(epochs, [row[key] for row in history], marker="o", ms=3, label=key)
    from matplotlib.ticker import MaxNLocator

    for axes, title in ((loss_axes, "loss"), (map_axes, "COCO mAP (validation)")):
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        if best_epoch:
            axes.axvline(
                best_epoch, color="grey", ls="--", lw=1, label=f"model: epoch {best_epoch}"
            )
        axes.set_title(title)
        axes.set_xlabel("epoch")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    return _png(figure)


def class_bars(names: Sequence[str], ap: np.ndarray, ap_50: np.ndarray) -> bytes:
    """AP and AP50 per class, weakest at the top (``names`` already in that order)."""
    shown = min(len(names), MAX_CLASSES)
    figure = _figure(8, 1.2 + 0.28 * shown)
    axes = figure.subplots()
    rows = np.arange(shown)
    axes.barh(rows - 0.2, np.nan_to_num(ap_50[:shown]), height=0.4, label="AP@.5")
    axes.barh(rows + 0.2, np.nan_to_num(ap[:shown]), height=0.4, label="AP@[.5:.95]")
    axes.set_yticks(rows, [_short(n) for n in names[:shown]], fontsize=8)
    axes.invert_yaxis()
    axes.set_xlim(0, 1)
    axes.set_xlabel("average precision (validation)")
    more = f" (the {shown} weakest of {len(names)})" if shown < len(names) else ""
    axes.set_title(f"per-class AP{more}")
    axes.grid(axis="x", alpha=0.3)
    # beside the axes: inside, it would hide the ends of the bars that reach 1.0
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _png(figure)


def pr_curves(
    names: Sequence[str], recall: np.ndarray, precision: np.ndarray, ap_50: np.ndarray
) -> bytes:
    """Precision against recall at IoU 0.5, one panel per class (``precision``: (101, classes))."""
    shown = min(len(names), MAX_CURVES)
    columns = min(shown, 4)
    rows = math.ceil(shown / columns)
    figure = _figure(2.6 * columns, 2.4 * rows)
    panels = np.atleast_1d(figure.subplots(rows, columns, squeeze=False).ravel())
    for index, axes in enumerate(panels):
        if index >= shown:
            axes.set_visible(False)
            continue
        curve = precision[:, index]
        if np.isfinite(curve).any():
            axes.plot(recall, np.nan_to_num(curve), lw=1.5)
            axes.fill_between(recall, np.nan_to_num(curve), alpha=0.15)
        else:
            axes.text(0.5, 0.5, "no boxes\nin validation", ha="center", va="center", fontsize=8)
        score = "n/a" if np.isnan(ap_50[index]) else f"{ap_50[index]:.2f}"
        axes.set_title(f"{_short(names[index], 18)}  AP50 {score}", fontsize=9)
        axes.set_xlim(0, 1)
        axes.set_ylim(0, 1.02)
        axes.tick_params(labelsize=7)
        axes.grid(alpha=0.3)
        if index % columns == 0:
            axes.set_ylabel("precision", fontsize=8)
        if index >= shown - columns:
            axes.set_xlabel("recall", fontsize=8)
    return _png(figure)


def dataset_summary(
    names: Sequence[str],
    train_counts: np.ndarray,
    valid_counts: np.ndarray,
    train_sizes: np.ndarray,
    valid_sizes: np.ndarray,
) -> bytes:
    """Boxes per class (train/valid) and the box sizes (sqrt of area, pixels)."""
    shown = min(len(names), MAX_CLASSES)
    order = np.argsort(-(train_counts + valid_counts), kind="stable")[:shown]
    figure = _figure(11, max(3.2, 1.2 + 0.25 * shown))
    counts_axes, sizes_axes = figure.subplots(1, 2, width_ratios=[1.1, 1])
    rows = np.arange(shown)
    counts_axes.barh(rows, train_counts[order], height=0.8, label="train")
    counts_axes.barh(
        rows, valid_counts[order], left=train_counts[order], height=0.8, label="validation"
    )
    counts_axes.set_yticks(rows, [_short(names[i]) for i in order], fontsize=8)
    counts_axes.invert_yaxis()
    more = f" (the {shown} most frequent of {len(names)})" if shown < len(names) else ""
    counts_axes.set_title(f"boxes per class{more}")
    counts_axes.legend(fontsize=8)
    counts_axes.grid(axis="x", alpha=0.3)
    both = np.concatenate([train_sizes, valid_sizes])
    if len(both):
        low, high = max(float(both.min()), 1.0), max(float(both.max()), 2.0)
        bins = np.geomspace(low, high * 1.01, 25)
        sizes_axes.hist([train_sizes, valid_sizes], bins=bins, label=["train", "validation"])
        from matplotlib.ticker import ScalarFormatter

        sizes_axes.set_xscale("log")
        for axis in (sizes_axes.xaxis,):
            axis.set_major_formatter(ScalarFormatter())
            axis.set_minor_formatter(ScalarFormatter())
        for edge, label in ((32, "small | medium"), (96, "medium | large")):
            if low < edge < high:
                sizes_axes.axvline(edge, color="grey", ls=":", lw=1)
                sizes_axes.text(
                    edge,
                    0.98,
                    label,
                    rotation=90,
                    va="top",
                    ha="right",
                    fontsize=7,
                    color="grey",
                    transform=sizes_axes.get_xaxis_transform(),
                )
        sizes_axes.legend(fontsize=8)
    sizes_axes.set_title("box sizes")
    sizes_axes.set_xlabel("sqrt(width * height), pixels")
    sizes_axes.set_ylabel("boxes")
    sizes_axes.grid(alpha=0.3)
    return _png(figure)


def _short(name: str, limit: int = 24) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


# ---- image grids


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (OSError, TypeError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _dashed_rectangle(draw: ImageDraw.ImageDraw, box, width: int, dash: int = 7) -> None:
    """Alternating black and white dashes: visible on any colour."""
    x1, y1, x2, y2 = box
    corners = [(x1, y1), (x2, y1), (x2, y2), (x1, y2), (x1, y1)]
    for (ax, ay), (bx, by) in itertools.pairwise(corners):
        length = max(math.hypot(bx - ax, by - ay), 1e-9)
        for n, start in enumerate(np.arange(0, length, dash)):
            t0, t1 = start / length, min(start + dash, length) / length
            draw.line(
                [
                    (ax + (bx - ax) * t0, ay + (by - ay) * t0),
                    (ax + (bx - ax) * t1, ay + (by - ay) * t1),
                ],
                fill=TRUTH_COLOURS[n % 2],
                width=width,
            )


def _tag(draw, xy, text: str, colour, font, below: bool = False) -> None:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    width, height = right - left + 6, bottom - top + 4
    x, y = xy
    y = y if below else y - height
    x = max(0, min(x, draw.im.size[0] - width))
    y = max(0, min(y, draw.im.size[1] - height))
    draw.rectangle([x, y, x + width, y + height], fill=colour)
    draw.text((x + 3, y + 2 - top), text, fill=(255, 255, 255), font=font)


def draw_thumbnail(
    path: str,
    truth: tuple[np.ndarray, np.ndarray],
    prediction: tuple[np.ndarray, np.ndarray, np.ndarray],
    class_names: Sequence[str],
    threshold: float,
) -> Image.Image:
    """The image, THUMBNAIL pixels wide: ground truth dashed black/white, predictions solid."""
    image = read_rgb(path)
    scale = min(THUMBNAIL / max(image.size), MAX_UPSCALE)  # small images grow, for the labels
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    image = image.resize(size, Image.Resampling.LANCZOS)
    draw = ImageDraw.Draw(image)
    font = _font(11)
    for box in truth[0]:
        _dashed_rectangle(draw, (box * scale).tolist(), width=2)
    boxes, scores, labels = prediction
    keep = np.flatnonzero(scores >= threshold)
    for i in keep[np.argsort(scores[keep])]:  # the most confident drawn last, on top
        colour = PREDICTION_COLOURS[(int(labels[i]) - 1) % len(PREDICTION_COLOURS)]
        x1, y1, x2, y2 = (boxes[i] * scale).tolist()
        draw.rectangle([x1, y1, x2, y2], outline=colour, width=2)
        name = class_names[int(labels[i]) - 1] if 0 < labels[i] <= len(class_names) else "?"
        _tag(draw, (x1, y1), f"{_short(name, 16)} {scores[i]:.2f}", colour, font)
    return image


def grid(tiles: Sequence[tuple[Image.Image, str]], columns: int = 3) -> bytes:
    """Thumbnails with a caption under each, as one JPEG."""
    if not tiles:
        return b""
    font = _font(12)
    caption = 20
    cell_w = max(THUMBNAIL, *(t.width for t, _ in tiles)) + 8
    cell_h = max(t.height for t, _ in tiles) + caption + 8
    rows = math.ceil(len(tiles) / columns)
    sheet = Image.new("RGB", (cell_w * min(columns, len(tiles)), cell_h * rows), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for index, (tile, text) in enumerate(tiles):
        x, y = (index % columns) * cell_w + 4, (index // columns) * cell_h + 4
        sheet.paste(tile, (x, y))
        while len(text) > 8 and draw.textlength(text, font=font) > cell_w - 8:
            text = text[:-2] + "…" if text.endswith("…") else text[:-1] + "…"
        draw.text((x, y + tile.height + 3), text, fill=(40, 40, 40), font=font)
    buffer = io.BytesIO()
    sheet.save(buffer, format="JPEG", quality=82, optimize=True)
    return buffer.getvalue()


def legend_note(threshold: float) -> str:
    return (
        "ground truth: dashed black and white; predictions: solid, coloured by class, with "
        f"their score (those scoring at least {threshold:.2f}, the threshold with the best F1 "
        "at IoU 0.5)"
    )

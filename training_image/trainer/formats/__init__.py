"""The dataset formats the trainer reads: one module per format, asked in this order.

Each module has ``NAME``, ``LAYOUT`` (how a message names the layout it accepts),
``find(channel, split)`` (a cheap look at the channel's top: what it found, or None; a
DataError when the format is there but ambiguous), ``describe(found, channel)``,
``splits(channel)`` (the splits declared at the channel's root, e.g. ``("train", "val")``)
and ``read(channel, files_present, found[, split])`` -> ``Annotations``.
"""

from trainer.formats import coco, ground_truth, voc, yolo
from trainer.formats.common import Annotations

FORMATS = (coco, voc, yolo, ground_truth)

__all__ = ["FORMATS", "Annotations"]

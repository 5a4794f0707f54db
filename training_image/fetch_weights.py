"""Bake pretrained weights into the image at build time, then prove they load offline.

    python fetch_weights.py                      # every model/backbone in contract
    python fetch_weights.py faster_rcnn/resnet18_fpn efficientdet/tf_lite0
    python fetch_weights.py none                 # no pretrained weights (pretrained=false only)

Weights land in TORCH_HOME (torchvision's ImageNet backbones, effdet's COCO
checkpoints). The check pass blocks every network call, as SageMaker's network
isolation does, and builds each model again from the cache alone.
"""

from __future__ import annotations

import socket
import sys

from contract.families import FAMILIES
from trainer import icevision_patches
from trainer.model import build_module


def selected(args: list[str]) -> list[tuple[str, str]]:
    everything = [(f.name, backbone) for f in FAMILIES.values() for backbone in f.backbones]
    if not args or args == ["all"]:
        return everything
    if args == ["none"]:
        return []
    chosen = [tuple(arg.split("/", 1)) for arg in args]
    unknown = [f"{m}/{b}" for m, b in chosen if (m, b) not in everything]
    if unknown:
        allowed = ", ".join(f"{m}/{b}" for m, b in everything)
        raise SystemExit(
            f"unknown model/backbone {', '.join(unknown)}; allowed: all, none, {allowed}"
        )
    return chosen


def build_all(pairs: list[tuple[str, str]]) -> None:
    for model, backbone in pairs:
        size = FAMILIES[model].image_size_multiple * 4
        build_module(model, backbone, 2, size, pretrained=True)
        print(f"ok {model}/{backbone}", flush=True)


def _no_network(*args, **kwargs):
    raise OSError("network access is blocked while checking the baked weights")


def main(args: list[str]) -> int:
    pairs = selected(args)
    icevision_patches.apply()  # also places IceVision's font, so the image never downloads it
    build_all(pairs)
    socket.socket.connect = _no_network  # type: ignore[method-assign]
    socket.create_connection = _no_network  # type: ignore[assignment]
    build_all(pairs)
    print(f"{len(pairs)} pretrained models load without network", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

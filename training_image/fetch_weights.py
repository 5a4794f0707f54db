"""Bake pretrained weights into the image at build time, then prove they load offline.

    python fetch_weights.py                      # every model/backbone in contract
    python fetch_weights.py faster_rcnn/resnet18_fpn efficientdet/tf_lite0
    python fetch_weights.py none                 # no pretrained weights (pretrained=false only)

Weights land in TORCH_HOME (torchvision's ImageNet backbones, effdet's COCO
checkpoints). The check pass blocks every network call, as SageMaker's network
isolation does, and builds each model again from the cache alone. Then, when
DETRAIN_WEIGHTS_MANIFEST names a file (the Dockerfile sets it), the manifest of
what was baked goes there: the image's self-check reads it (trainer/baked_weights.py).
"""

from __future__ import annotations

import sys

from contract.families import FAMILIES
from trainer import baked_weights, icevision_patches


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


def main(args: list[str]) -> int:
    pairs = selected(args)
    icevision_patches.apply()  # also places IceVision's font, so the image never downloads it
    baked_weights.build_each(pairs)
    with baked_weights.network_blocked():
        baked_weights.build_each(pairs)
    print(f"{len(pairs)} pretrained models load without network", flush=True)
    manifest = baked_weights.manifest_path()
    if manifest is not None:
        written = baked_weights.write_manifest(manifest, pairs, baked_weights.cache_roots())
        print(f"manifest: {manifest} ({len(written['files'])} files)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Mends that let IceVision 0.12.0 run on torch 2.x, numpy 2 and Pillow 12.

Import this module before anything imports ``icevision`` (``trainer/__init__.py``
does). Every mend is applied once, has no network access, and is a no-op where
the installed library no longer needs it. See docs/training-image.md.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

FONT_NAME = "SpaceGrotesk-Medium.ttf"
_applied = False


def place_font(home: Path) -> Path:
    """Put a TTF where IceVision looks, so ``import icevision`` never downloads one."""
    from matplotlib import font_manager

    fonts = home / ".icevision" / "fonts"
    fonts.mkdir(parents=True, exist_ok=True)
    target = fonts / FONT_NAME
    if not target.exists():
        source = font_manager.findfont("DejaVu Sans", fallback_to_default=True)
        tmp = target.with_suffix(".tmp")
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    return target


def _writable_home() -> Path:
    home = Path.home()
    try:
        (home / ".icevision").mkdir(parents=True, exist_ok=True)
        probe = home / ".icevision" / ".write-probe"
        probe.touch()
        probe.unlink()
    except OSError:
        home = Path(tempfile.mkdtemp(prefix="icevision-home-"))
        os.environ["HOME"] = str(home)
    return home


def _restore_numpy_aliases() -> None:
    # numpy >= 1.24 removed these; IceVision's drawing code still uses them.
    for name, kind in (("float", float), ("int", int), ("bool", bool)):
        if name not in np.__dict__:
            setattr(np, name, kind)


def _resnet_fpn_backbone_with_weights() -> None:
    # torchvision replaced `pretrained=` with `weights=`; map it so no deprecated path is used.
    from icevision.backbones import resnet_fpn
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone

    def backbone(*, backbone_name: str, pretrained: bool = False, **kwargs):
        kwargs.setdefault("weights", "DEFAULT" if pretrained else None)
        return resnet_fpn_backbone(backbone_name=backbone_name, **kwargs)

    resnet_fpn.resnet_fpn_backbone = backbone


def _img_size_reads_exif_while_open() -> None:
    # Pillow >= 12.1 reads EXIF lazily: IceVision reads it after closing the file.
    import PIL.Image
    from icevision.utils import imageio
    from icevision.utils.imageio import ImgSize

    def get_img_size(filepath) -> ImgSize:
        with PIL.Image.open(filepath) as image:
            width, height = image.size
            orientation = image.getexif().get(0x0112)
        return ImgSize(height, width) if orientation in (5, 6, 7, 8) else ImgSize(width, height)

    original = imageio.get_img_size
    for module in list(sys.modules.values()):
        if getattr(module, "get_img_size", None) is original:
            module.get_img_size = get_img_size


def _open_img_in_any_mode() -> None:
    # IceVision's open_img calls convert("RGB"), which clips 16-bit and float images to white.
    from icevision.core import record_components
    from icevision.utils import imageio

    from trainer.images import read_rgb

    original = imageio.open_img

    def open_img(fn, gray: bool = False, ignore_exif: bool = False):
        return original(fn, gray=gray, ignore_exif=ignore_exif) if gray else read_rgb(str(fn))

    record_components.open_img = open_img


def apply() -> None:
    """Apply every mend (idempotent). Must run before the first ``import icevision``."""
    global _applied
    if _applied:
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    # effdet scripts a few activations; torch 2.x warns on every run, and users can do nothing.
    warnings.filterwarnings(
        "ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning
    )
    place_font(_writable_home())
    _restore_numpy_aliases()
    import icevision  # noqa: F401  (safe now: the font is in place)

    _resnet_fpn_backbone_with_weights()
    _img_size_reads_exif_while_open()
    _open_img_in_any_mode()
    _applied = True

"""Decode an image file into the 8-bit RGB the models train on, whatever its mode.

Pillow's ``convert("RGB")`` clips high-bit-depth pixels (a 16-bit grayscale PNG
becomes all white) and drops transparency without compositing. Here:

- 16-bit (``I;16*``) is scaled by 255/65535; 32-bit integer (``I``, how older Pillows open
  16-bit PNGs) by the same when its values fit in 16 bits, else by its own maximum;
- float (``F``) in [0, 1] is multiplied by 255, any other range is stretched min..max;
- palette, ``LA``, ``RGBA`` and ``PA`` are composited over white (transparent areas look
  the way a browser shows them), then converted;
- ``CMYK``, ``YCbCr``, ``1``, ``L`` ... go through Pillow's own conversion.

EXIF orientation is applied first, as in IceVision. Every reader of pixels uses this module:
training (IceVision's ``open_img``, patched), the report's thumbnails, and the shipped
``detector.py``, which carries this file's code (trainer/artifacts.py writes it in), so this
module imports nothing from the repository.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

BACKGROUND = (255, 255, 255)
ORIENTATION = 0x0112  # the EXIF tag


def _gray_to_l(pixels: np.ndarray, mode: str) -> Image.Image:
    values = pixels.astype(np.float64)
    if mode == "F":
        finite = values[np.isfinite(values)]
        low, high = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
        if low < 0 or high > 1:
            values = (values - low) / max(high - low, 1e-12)
        values = np.nan_to_num(values, nan=0.0, posinf=1.0, neginf=0.0) * 255
    elif mode.startswith("I;16") or values.max(initial=0) <= 65535:
        values = values * (255 / 65535)
    else:
        values = values * (255 / values.max())
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), "L")


def to_rgb(image: Image.Image) -> Image.Image:
    """An 8-bit RGB copy of ``image`` (orientation applied, depth scaled, alpha composited)."""
    return _rgb(ImageOps.exif_transpose(image), copy=True)


def _rgb(image: Image.Image, *, copy: bool) -> Image.Image:
    mode = image.mode
    if mode == "RGB" and not copy:
        return image
    if mode in ("I", "F") or mode.startswith("I;16"):
        return _gray_to_l(np.asarray(image), mode).convert("RGB")
    if (mode == "P" and "transparency" in image.info) or mode == "PA":
        image, mode = image.convert("RGBA"), "RGBA"
    if mode in ("LA", "RGBA", "La", "RGBa"):
        image = image.convert("RGBA")
        canvas = Image.new("RGBA", image.size, (*BACKGROUND, 255))
        return Image.alpha_composite(canvas, image).convert("RGB")
    return image.convert("RGB")


def read_rgb(path: str) -> Image.Image:
    """Open and fully decode ``path`` as 8-bit RGB; Pillow's errors (OSError etc.) propagate.

    The decoded image is this function's own: orientation and mode change it in place, so an
    upright RGB file costs no copy (``to_rgb`` copies, for callers who keep their image).
    """
    with Image.open(path) as image:
        image.load()
        ImageOps.exif_transpose(image, in_place=True)
        return _rgb(image, copy=False)


def read_rgb_array(path: str) -> np.ndarray:
    """``read_rgb``'s pixels as a (height, width, 3) uint8 array."""
    return np.asarray(read_rgb(path))


def is_plain_jpeg(image: Image.Image) -> bool:
    """Whether libjpeg's own RGB output is ``read_rgb``'s for this opened (not decoded) file:
    a JPEG in RGB (YCbCr) or grayscale, with no EXIF rotation. CMYK, other formats and rotated
    photos need this module's rules (``read_rgb``)."""
    return (
        image.format == "JPEG"
        and image.mode in ("RGB", "L")
        and image.getexif().get(ORIENTATION, 1) == 1
    )

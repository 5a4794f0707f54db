"""Images in any mode become the right 8-bit RGB, in training and in the shipped detector."""

import json

import numpy as np
import pytest
from PIL import Image
from synthetic import write_coco

from trainer import dataset, images, standalone_detector, tables

GRAY_16 = np.array([[0, 32768, 65535]], dtype=np.uint16)


def _palette_with_transparency() -> Image.Image:
    image = Image.fromarray(np.array([[0, 1, 1]], dtype=np.uint8), "P")
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.info["transparency"] = 0
    return image


CASES = {
    "I;16": (lambda: Image.fromarray(GRAY_16), [0, 128, 255]),
    "I": (lambda: Image.fromarray(GRAY_16.astype(np.int32), "I"), [0, 128, 255]),
    "F in [0, 1]": (
        lambda: Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32)),
        [0, 128, 255],
    ),
    "F in [-10, 990]": (
        lambda: Image.fromarray(np.array([[-10.0, 490.0, 990.0]], dtype=np.float32)),
        [0, 128, 255],
    ),
    "LA": (
        lambda: Image.fromarray(np.array([[[0, 0], [0, 255], [255, 255]]], np.uint8), "LA"),
        [255, 0, 255],
    ),
}


@pytest.mark.parametrize("convert", [images.to_rgb, standalone_detector._to_rgb])
@pytest.mark.parametrize("case", list(CASES))
def test_gray_modes_are_scaled_not_clipped(convert, case):
    make, expected = CASES[case]
    rgb = np.asarray(convert(make()))
    assert rgb.dtype == np.uint8 and rgb.shape == (1, 3, 3)
    assert rgb[0, :, 0].tolist() == expected
    assert (rgb[..., 0] == rgb[..., 2]).all()


@pytest.mark.parametrize("convert", [images.to_rgb, standalone_detector._to_rgb])
def test_colour_modes(convert):
    palette = np.asarray(convert(_palette_with_transparency()))
    assert palette[0].tolist() == [[255, 255, 255], [255, 0, 0], [255, 0, 0]]
    cmyk = Image.new("CMYK", (1, 1), (0, 255, 255, 0))
    assert np.asarray(convert(cmyk))[0, 0].tolist() == [255, 0, 0]
    half = Image.new("RGBA", (1, 1), (0, 0, 0, 128))
    assert np.asarray(convert(half))[0, 0].tolist() == [127, 127, 127]


def test_a_16_bit_png_trains_on_its_pixels_not_on_white(tmp_path):
    write_coco(tmp_path, 2)
    doc = json.loads((tmp_path / "annotations.json").read_text())
    ramp = (np.arange(96, dtype=np.uint32)[None, :].repeat(80, 0) * 600).astype(np.uint16)
    for entry in doc["images"]:
        entry["file_name"] = entry["file_name"].replace(".jpg", ".png")
        Image.fromarray(ramp).save(tmp_path / "images" / entry["file_name"])
    (tmp_path / "annotations.json").write_text(json.dumps(doc))

    record = dataset.build(tables.load(tmp_path), 128, train=False).records[0].load()

    pixels = np.asarray(record.img)
    assert pixels.shape == (80, 96, 3)
    assert pixels[0, 0].tolist() == [0, 0, 0] and pixels[0, -1, 0] == round(95 * 600 * 255 / 65535)

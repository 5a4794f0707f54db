"""Images in any mode become the right 8-bit RGB: one decoder for training, the report's
thumbnails and the shipped detector."""

import importlib.util
import json

import numpy as np
import pytest
from PIL import Image

from tests.support.synthetic import write_coco
from trainer import artifacts, dataset, images, report_figures, tables


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """The detector.py a model folder gets, imported from its own file."""
    path = tmp_path_factory.mktemp("model") / "detector.py"
    path.write_text(artifacts.detector_source())
    spec = importlib.util.spec_from_file_location("shipped_detector", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


@pytest.mark.parametrize("where", ["trainer", "detector.py"])
@pytest.mark.parametrize("case", list(CASES))
def test_gray_modes_are_scaled_not_clipped(shipped, where, case):
    convert = images.to_rgb if where == "trainer" else shipped.to_rgb
    make, expected = CASES[case]
    rgb = np.asarray(convert(make()))
    assert rgb.dtype == np.uint8 and rgb.shape == (1, 3, 3)
    assert rgb[0, :, 0].tolist() == expected
    assert (rgb[..., 0] == rgb[..., 2]).all()


@pytest.mark.parametrize("where", ["trainer", "detector.py"])
def test_colour_modes(shipped, where):
    convert = images.to_rgb if where == "trainer" else shipped.to_rgb
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

    pixels = images.read_rgb_array(tables.load(tmp_path).paths[0])

    assert pixels.shape == (80, 96, 3)
    assert pixels[0, 0].tolist() == [0, 0, 0] and pixels[0, -1, 0] == round(95 * 600 * 255 / 65535)


# ---- every mode the trainer accepts, from a file: the trainer's pixels are the reference

RAMP = np.linspace(0, 1, 48 * 32).reshape(32, 48)  # 48 wide, 32 high
ALPHA = (np.arange(48)[None, :].repeat(32, 0) * 5).astype(np.uint8)  # 0 (clear) .. 235


def _rgb_ramp() -> np.ndarray:
    return np.stack([RAMP, RAMP[::-1], RAMP[:, ::-1]], axis=-1) * 255


def _palette(per_entry_alpha: bool) -> Image.Image:
    image = Image.fromarray((RAMP * 15).astype(np.uint8), "P")
    image.putpalette([v for i in range(16) for v in (i * 16, 255 - i * 16, 128)])
    if per_entry_alpha:
        image.info["transparency"] = bytes(range(0, 256, 16))
    else:
        image.info["transparency"] = 3
    return image


def _exif_rotated() -> Image.Image:
    image = Image.fromarray(_rgb_ramp().astype(np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90 degrees clockwise
    image.info["exif"] = exif.tobytes()
    return image


FILES = {
    "16-bit grayscale PNG": ("png", lambda: Image.fromarray((RAMP * 65535).astype(np.uint16))),
    "float TIFF (F) in [0, 1]": ("tif", lambda: Image.fromarray(RAMP.astype(np.float32))),
    "float TIFF (F) in [-5, 300]": (
        "tif",
        lambda: Image.fromarray((RAMP * 305 - 5).astype(np.float32)),
    ),
    "palette PNG, one transparent entry": ("png", lambda: _palette(False)),
    "palette PNG, alpha per entry (tRNS)": ("png", lambda: _palette(True)),
    "CMYK JPEG": (
        "jpg",
        lambda: Image.fromarray(
            np.concatenate([_rgb_ramp(), _rgb_ramp()[..., :1] / 2], -1).astype(np.uint8), "CMYK"
        ),
    ),
    "EXIF-rotated JPEG": ("jpg", _exif_rotated),
    "LA PNG": (
        "png",
        lambda: Image.fromarray(np.stack([(RAMP * 255).astype(np.uint8), ALPHA], -1), "LA"),
    ),
    "RGBA PNG": (
        "png",
        lambda: Image.fromarray(
            np.concatenate([_rgb_ramp().astype(np.uint8), ALPHA[..., None]], -1), "RGBA"
        ),
    ),
}


def _write(folder, case: str) -> str:
    suffix, make = FILES[case]
    image = make()
    path = folder / f"image.{suffix}"
    options = {"exif": image.info["exif"]} if "exif" in image.info else {}
    if "transparency" in image.info:
        options["transparency"] = image.info["transparency"]
    image.save(path, **options)
    return str(path)


def _trainers_pixels(path: str) -> np.ndarray:
    """What the model trains on: IceVision's record loading, as the DataLoader's workers do."""
    width, height = images.read_rgb(path).size
    table = tables.DetectionTable(
        paths=np.array([path], dtype=object),
        widths=np.array([width]),
        heights=np.array([height]),
        offsets=np.array([0, 1]),
        boxes=np.array([[1, 1, 10, 10]], dtype=np.float32),
        labels=np.array([1]),
        class_names=("thing",),
    )
    return np.asarray(dataset.Records(table)[0].load().img)


def _close(found: np.ndarray, expected: np.ndarray) -> bool:
    assert found.shape == expected.shape
    return int(np.abs(found.astype(int) - expected.astype(int)).max()) <= 1


@pytest.mark.parametrize("case", list(FILES))
def test_the_report_and_detector_py_see_the_trainers_pixels(tmp_path, shipped, case):
    path = _write(tmp_path, case)
    expected = _trainers_pixels(path)
    assert expected.std() > 10  # a picture, not a flat (clipped) frame

    assert _close(np.asarray(shipped.read_rgb(path)), expected)
    no_boxes = np.zeros((0, 4), dtype=np.float32)
    thumbnail = report_figures.draw_thumbnail(
        path, (no_boxes, np.zeros(0)), (no_boxes, np.zeros(0), np.zeros(0, int)), [], 0.5
    )
    resized = Image.fromarray(expected).resize(thumbnail.size, Image.Resampling.LANCZOS)
    assert _close(np.asarray(thumbnail), np.asarray(resized)), case

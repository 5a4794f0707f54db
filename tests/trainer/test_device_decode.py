"""Decode on the device, run here through torchvision's CPU decoder: the same batches as the
workers' path, within the interpolation's rounding; files that need images.read_rgb's rules
still take them."""

import random
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from PIL import Image

from contract.hyperparameters import HyperparameterError, parse
from tests.support.synthetic import write_coco
from trainer import batches, dataset, device_decode, tables
from trainer.device_decode import EncodedBatch, EncodedJpeg
from trainer.errors import ConfigError, DataError

CPU = torch.device("cpu")
# float32 bilinear against OpenCV's 11-bit fixed point: one level; the two libjpeg-turbo builds
# (Pillow's, torchvision's) can add one more.
LEVELS = 2


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """Generated JPEGs, and three files the workers must decode: PNG, CMYK, EXIF-rotated."""
    folder = tmp_path_factory.mktemp("mixed")
    write_coco(folder, 8, seed=4, size=(96, 80))
    table = tables.load(folder)
    paths = table.paths
    with Image.open(paths[1]) as image:
        image.convert("CMYK").save(paths[1], "JPEG", quality=95)
    with Image.open(paths[2]) as image:
        exif = Image.Exif()
        exif[0x0112] = 6  # shown rotated 90 degrees clockwise: stored 80 wide, 96 high
        image.transpose(Image.Transpose.ROTATE_90).save(paths[2], "JPEG", exif=exif)
    with Image.open(paths[3]) as image:
        image.save(paths[3], "PNG")  # a PNG under a .jpg name: the header decides
    return tables.load(folder)


def first_batch(table, family, *, train, on_device, seed=7):
    built = dataset.build(table, 128, train=train, decode_on_device=on_device)
    loader = batches.loader(built, family, train=train, batch_size=len(table))
    random.seed(seed)
    (pixels, targets), samples = next(iter(loader))
    return pixels, targets, samples


@pytest.mark.parametrize("train", [True, False])
def test_device_batches_equal_the_workers_batches(mixed, train):
    cpu_pixels, cpu_targets, _ = first_batch(mixed, "faster_rcnn", train=train, on_device=False)
    encoded, targets, _ = first_batch(mixed, "faster_rcnn", train=train, on_device=True)

    assert isinstance(encoded, EncodedBatch)
    kinds = [isinstance(item, EncodedJpeg) for item in encoded.items]
    assert kinds == [True, False, False, False, True, True, True, True]
    pixels = device_decode.decode(encoded, CPU)
    assert pixels.dtype == torch.uint8 and pixels.shape == cpu_pixels.shape
    difference = (pixels.int() - cpu_pixels.int()).abs()
    assert difference[1:4].max() == 0  # decoded by the workers: the same code
    assert 0 < difference.max() <= LEVELS  # some rounding differs, never by more
    assert difference.float().mean() < 0.1
    for got, want in zip(targets, cpu_targets, strict=True):
        assert torch.equal(got["labels"], want["labels"])
        torch.testing.assert_close(got["boxes"], want["boxes"], atol=1e-4, rtol=0)
    images, _ = batches.to_device((encoded, targets), CPU, "faster_rcnn")
    expected, _ = batches.to_device((cpu_pixels, cpu_targets), CPU, "faster_rcnn")
    assert all(a.shape == b.shape for a, b in zip(images, expected, strict=True))


def test_a_corrupt_jpeg_fails_naming_the_file(tmp_path):
    write_coco(tmp_path, 2, size=(96, 80))
    table = tables.load(tmp_path)
    data = bytearray(Path(table.paths[1]).read_bytes())
    table_at = data.index(b"\xff\xc4")  # a Huffman table: past the header the workers read
    data[table_at + 5 : table_at + 21] = b"\xff" * 16  # more codes than a table can hold
    Path(table.paths[1]).write_bytes(bytes(data))
    encoded, _, _ = first_batch(table, "efficientdet", train=False, on_device=True)

    with pytest.raises(DataError, match=r"img_0002.jpg cannot be decoded .*decode_on=cpu"):
        device_decode.decode(encoded, CPU)


def _hp(decode_on="auto", augmentation="light", max_bad_images=0):
    return SimpleNamespace(
        decode_on=decode_on, augmentation=augmentation, max_bad_images=max_bad_images
    )


def test_auto_decodes_on_a_gpu_with_few_vcpus_and_says_why():
    gpu = torch.device("cuda", 0)
    assert device_decode.choose(_hp(), gpu, 4) == (
        True,
        "decode_on=auto: 4 vCPUs per GPU (< 8): the GPU decodes",
    )
    assert device_decode.choose(_hp(), gpu, 24)[0] is False
    assert device_decode.choose(_hp(), CPU, 1)[0] is False
    assert device_decode.choose(_hp(max_bad_images=3), gpu, 4)[0] is False
    assert device_decode.choose(_hp(augmentation="standard"), gpu, 4)[0] is False
    assert device_decode.choose(_hp("device"), CPU, 64) == (True, "decode_on=device")
    assert device_decode.choose(_hp("cpu"), gpu, 1)[0] is False


def test_device_refuses_what_only_the_workers_can_do():
    with pytest.raises(ConfigError, match=r"max_bad_images=2 .*decode_on=cpu"):
        device_decode.choose(_hp("device", max_bad_images=2), CPU, 4)
    with pytest.raises(ConfigError, match=r"augmentation=standard"):
        device_decode.choose(_hp("device", augmentation="standard"), CPU, 4)


def test_an_unknown_decode_on_is_refused_by_the_contract():
    with pytest.raises(
        HyperparameterError,
        match=r"hyperparameter 'decode_on' = 'gpu' is not supported; allowed: auto, cpu, device",
    ):
        parse({"decode_on": "gpu"})

"""The numpy/OpenCV flip, resize and pad give the albumentations path's pixels and boxes, and
the same flips from the same seed."""

import random

import numpy as np
import pytest

from tests.support.synthetic import write_coco
from trainer import dataset, icevision_patches, tables, transforms


def albumentations_path(table, size: int, *, train: bool):
    """The path this replaced: IceVision records through its adapter (flip, resize, pad)."""
    icevision_patches.apply()
    from icevision import tfms
    from icevision.data.dataset import Dataset

    steps = [*tfms.A.resize_and_pad(size)]
    if train:
        steps.insert(0, tfms.A.HorizontalFlip(p=0.5))
    return Dataset(dataset.Records(table), tfms.A.Adapter(steps))


def assert_same(table, size: int, *, train: bool, seed: int) -> int:
    """Both paths from the same seed (built first: importing IceVision draws random numbers)."""
    old, new = (
        albumentations_path(table, size, train=train),
        dataset.build(table, size, train=train),
    )
    random.seed(seed)
    expected = [old[i] for i in range(len(table))]
    random.seed(seed)
    found = [new[i] for i in range(len(table))]
    flips = 0
    for want, got in zip(expected, found, strict=True):
        pixels = np.asarray(want.img)
        assert got.pixels.shape == pixels.shape == (size, size, 3)
        difference = np.abs(got.pixels.astype(int) - pixels.astype(int))
        assert difference.max() == 0, f"record {want.record_id}: {difference.max()} levels"
        boxes = np.array([b.xyxy for b in want.detection.bboxes]).reshape(-1, 4)
        np.testing.assert_allclose(got.boxes, boxes, atol=1e-4, rtol=0)
        assert got.labels.tolist() == want.detection.label_ids
        assert got.record_id == want.record_id
        flips += _flipped(table.annotations(want.record_id)[0], boxes, table, want.record_id, size)
    return flips


def _flipped(original: np.ndarray, placed: np.ndarray, table, row: int, size: int) -> bool:
    width, height = int(table.widths[row]), int(table.heights[row])
    unflipped, _ = transforms.transform_boxes(original, width, height, size, flip=False)
    return not np.allclose(unflipped, placed, atol=1e-3)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("generated")
    write_coco(folder, 12, seed=5, size=(96, 80))
    return tables.load(folder)


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("size", [128, 64])  # up- and downscaled
def test_generated_images_match_the_albumentations_path(generated, train, size):
    flips = assert_same(generated, size, train=train, seed=11)
    assert (0 < flips < len(generated)) if train else flips == 0


@pytest.mark.parametrize("name", ["coco-sample", "fridge-voc"])
@pytest.mark.parametrize("train", [True, False])
def test_real_photos_match_the_albumentations_path(shared_datasets, name, train):
    assert_same(tables.load(shared_datasets / name), 256, train=train, seed=3)


def test_the_same_seed_flips_the_same_images(generated):
    flipped = {}
    for seed in (0, 1):
        random.seed(seed)
        built = dataset.build(generated, 128, train=True)
        flipped[seed] = [_flipped(*_boxes(generated, built, row), generated, row, 128) for row in
                         range(len(generated))]  # fmt: skip
        random.seed(seed)
        again = dataset.build(generated, 128, train=True)
        assert flipped[seed] == [
            _flipped(*_boxes(generated, again, row), generated, row, 128)
            for row in range(len(generated))
        ]
    assert any(flipped[0]) and not all(flipped[0])  # both outcomes, so the comparisons mean it
    assert flipped[0] != flipped[1]


def _boxes(table, built, row: int):
    return table.annotations(row)[0], built[row].boxes


def test_a_box_outside_the_canvas_is_dropped_with_its_label():
    boxes = np.array([[0, 0, 10, 10], [200, 0, 210, 10]], dtype=np.float32)
    placed, keep = transforms.transform_boxes(boxes, 100, 50, 64, flip=False)
    assert keep.tolist() == [True, False] and placed.shape == (1, 4)
    assert transforms.resized_size(100, 50, 64) == (64, 32)
    np.testing.assert_allclose(placed[0], [0, 16, 6.4, 22.4], atol=1e-5)

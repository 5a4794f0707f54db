"""uint8 batches normalized on the device: the same tensors as IceVision's own pipeline."""

import numpy as np
import pytest
import torch

from tests.support.synthetic import write_coco
from trainer import batches, dataset, icevision_patches, model, tables


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    folder = tmp_path_factory.mktemp("coco")
    write_coco(folder, 4, size=(160, 120))
    return tables.load(folder)


def icevision_batch(table, family: str, *, train: bool):
    """IceVision's path before this change: Normalize in the workers, the family's collate."""
    icevision_patches.apply()
    from icevision import tfms
    from icevision.data.dataset import Dataset

    steps = [*tfms.A.resize_and_pad(128), tfms.A.Normalize()]
    images = Dataset(dataset.Records(table), tfms.A.Adapter(steps))
    kind = model.model_type(family)
    make = kind.train_dl if train else kind.valid_dl
    (xb, yb), _ = next(iter(make(images, batch_size=4)))
    return xb, yb


@pytest.mark.parametrize("family", ["efficientdet", "faster_rcnn"])
@pytest.mark.parametrize("train", [True, False])
def test_device_normalized_batches_equal_icevisions_to_the_bit(table, family, train):
    expected_x, expected_y = icevision_batch(table, family, train=train)
    loader = batches.loader(
        dataset.build(table, 128, train=False), family, train=train, batch_size=4
    )
    (pixels, targets), records = next(iter(loader))
    assert pixels.dtype == torch.uint8 and pixels.shape == (4, 128, 128, 3)
    assert all(r.pixels is None for r in records)  # unloaded: nothing big goes back to the trainer
    xb, yb = batches.to_device((pixels, targets), torch.device("cpu"), family)
    if family == "efficientdet":
        assert torch.equal(xb, expected_x)
        assert yb.keys() == expected_y.keys()
        for key in ("bbox", "cls"):
            assert all(torch.equal(a, b) for a, b in zip(yb[key], expected_y[key], strict=True))
    else:
        assert all(torch.equal(a, b) for a, b in zip(xb, expected_x, strict=True))
        for got, want in zip(yb, expected_y, strict=True):
            assert got.keys() == want.keys()
            assert all(torch.equal(got[k], want[k]) for k in want)


def test_channels_last_is_the_same_values_in_nhwc_memory():
    pixels = torch.randint(0, 256, (2, 8, 8, 3), dtype=torch.uint8)
    plain = batches.normalize(pixels)
    nhwc = batches.normalize(pixels, channels_last=True)
    assert plain.is_contiguous() and nhwc.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(plain, nhwc)


def test_an_unknown_family_is_refused():
    with pytest.raises(
        ValueError, match="'yolo' is unknown; allowed: faster_rcnn, retinanet, efficientdet"
    ):
        batches.Collate("yolo", train=True)


def test_detections_equal_icevisions_conversion():
    rng = torch.Generator().manual_seed(0)
    boxes = torch.rand(2, 5, 4, generator=rng) * 100
    boxes[..., 2:] += boxes[..., :2]
    scores = torch.rand(2, 5, 1, generator=rng)
    classes = torch.randint(1, 3, (2, 5, 1), generator=rng).float()
    effdet_raw = torch.cat([boxes, scores, classes], dim=2)
    torchvision_raw = [
        {"boxes": boxes[i], "scores": scores[i, :, 0], "labels": classes[i, :, 0].long()}
        for i in range(2)
    ]
    icevision_patches.apply()
    from icevision.core.class_map import ClassMap

    for family, raw in (("efficientdet", effdet_raw), ("faster_rcnn", torchvision_raw)):
        records = _records(ClassMap(["red", "green"]), 2)
        images = torch.zeros(2, 3, 8, 8)
        converted = model.model_type(family).convert_raw_predictions(
            batch=(images, [{}, {}]), raw_preds=raw, records=records, detection_threshold=0.0
        )
        for ours, theirs in zip(model.detections(family, raw), converted, strict=True):
            detection = theirs.detection
            want_boxes = np.array([b.xyxy for b in detection.bboxes], dtype=np.float32)
            np.testing.assert_array_equal(ours[0], want_boxes)
            np.testing.assert_array_equal(ours[1], np.asarray(detection.scores, np.float32))
            np.testing.assert_array_equal(ours[2], np.asarray(detection.label_ids))


def _records(class_map, count: int) -> list:
    from icevision.core.record_defaults import ObjectDetectionRecord
    from icevision.utils.imageio import ImgSize

    records = []
    for i in range(count):
        record = ObjectDetectionRecord()
        record.set_record_id(i)
        record.set_img_size(ImgSize(8, 8), original=True)
        record.detection.set_class_map(class_map)
        records.append(record)
    return records

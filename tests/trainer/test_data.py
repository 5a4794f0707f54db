import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.support.synthetic import CLASSES, write_coco, write_voc
from trainer import dataset, tables
from trainer.errors import DataError


def _edit_coco(folder: Path, edit) -> None:
    path = folder / "annotations.json"
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))


def test_generated_coco_is_read_column_wise(tmp_path):
    write_coco(tmp_path, 8)
    (tmp_path / "_launch.json").write_text("{}")  # the upload marker is not a second COCO file
    table = tables.load(tmp_path)
    doc = json.loads((tmp_path / "annotations.json").read_text())
    assert len(table) == 8 and table.num_boxes == len(doc["annotations"])
    assert table.class_names == CLASSES
    first = doc["annotations"][0]
    x, y, w, h = first["bbox"]
    boxes, labels = table.annotations(first["image_id"] - 1)
    assert [x, y, x + w, y + h] in boxes.tolist()
    assert labels[0] == first["category_id"]


def test_generated_voc(tmp_path):
    write_voc(tmp_path, 5)
    table = tables.load(tmp_path)
    assert len(table) == 5 and set(table.class_names) <= set(CLASSES)
    assert table.paths[0].endswith("images/scene_000.png")


@pytest.mark.parametrize(
    ("name", "images", "boxes", "classes"),
    [("coco-sample", 6, 35, 80), ("fridge-voc", 6, 12, 4), ("voc-sample", 2, 3, 3)],
)
def test_shared_datasets(shared_datasets, name, images, boxes, classes):
    table = tables.load(shared_datasets / name)
    assert (len(table), table.num_boxes, len(table.class_names)) == (images, boxes, classes)
    assert (
        table.boxes[:, 2] <= table.widths[np.repeat(np.arange(images), np.diff(table.offsets))]
    ).all()


def test_subset_and_split_keep_each_images_boxes(tmp_path):
    write_coco(tmp_path, 10)
    table = tables.load(tmp_path)
    train, valid = tables.split(table, 0.3, seed=1)
    assert (len(train), len(valid)) == (7, 3)
    assert train.num_boxes + valid.num_boxes == table.num_boxes
    for part in (train, valid):
        for i, path in enumerate(part.paths):
            original = list(table.paths).index(path)
            assert part.annotations(i)[0].tolist() == table.annotations(original)[0].tolist()
    again, _ = tables.split(table, 0.3, seed=1)
    assert list(again.paths) == list(train.paths)


def test_validation_classes_follow_training(tmp_path):
    write_voc(tmp_path / "train", 6, seed=1)
    write_voc(tmp_path / "valid", 3, seed=2)
    train = tables.load(tmp_path / "train")
    valid = tables.load(tmp_path / "valid", train.class_names)
    assert valid.class_names == train.class_names
    xml = tmp_path / "valid" / "annotations" / "scene_000.xml"
    xml.write_text(
        xml.read_text()
        .replace("<name>red</name>", "<name>blue</name>")
        .replace("<name>green</name>", "<name>blue</name>")
    )
    with pytest.raises(DataError, match=r"classes blue are not in the training data; allowed: "):
        tables.load(tmp_path / "valid", train.class_names)


def test_missing_images_are_counted_with_examples(tmp_path):
    write_coco(tmp_path, 6)
    for name in ("img_0002.jpg", "img_0005.jpg"):
        (tmp_path / "images" / name).unlink()
    with pytest.raises(DataError, match=r"2 of 6 images .* missing, e.g. images/img_0002.jpg"):
        tables.load(tmp_path)


def test_unreadable_images(tmp_path):
    write_coco(tmp_path, 4)
    (tmp_path / "images" / "img_0003.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match=r"1 of 4 images are not readable.*img_0003.jpg"):
        tables.load(tmp_path)


def test_stated_size_must_match_the_file(tmp_path):
    write_coco(tmp_path, 3)
    _edit_coco(tmp_path, lambda d: d["images"][0].update(width=200))
    with pytest.raises(
        DataError, match=r"img_0001.jpg: the annotation says 200x80, the image shows 96x80$"
    ):
        tables.load(tmp_path)


def test_missing_size_is_read_from_the_image(tmp_path):
    write_coco(tmp_path, 3)
    _edit_coco(tmp_path, lambda d: [im.pop("width") for im in d["images"]])
    assert tables.load(tmp_path).widths.tolist() == [96, 96, 96]


def test_boxes_outside_the_image(tmp_path):
    write_coco(tmp_path, 3)
    _edit_coco(tmp_path, lambda d: d["annotations"][0].update(bbox=[50, 10, 60, 20]))
    with pytest.raises(
        DataError,
        match=r"1 of \d+ boxes .* lie outside their image by more than 1 px, "
        r"e.g. images/img_0001.jpg annotation id 1: box \(xyxy\) \[50.0, 10.0, 110.0, 30.0\] "
        r"in 96x80",
    ):
        tables.load(tmp_path)


def test_boxes_a_pixel_over_the_edge_are_clipped(tmp_path):
    write_coco(tmp_path, 3)
    _edit_coco(tmp_path, lambda d: d["annotations"][0].update(bbox=[90, 70, 6.5, 10.5]))
    assert tables.load(tmp_path).boxes.max(axis=0)[2:].tolist() == [96, 80]


def test_boxes_without_area(tmp_path):
    write_voc(tmp_path, 2)
    xml = tmp_path / "annotations" / "scene_001.xml"
    text = xml.read_text()
    start = text.index("<xmax>") + 6
    xml.write_text(text[:start] + "0" + text[text.index("</xmax>") :])
    with pytest.raises(
        DataError, match=r"have no area .*scene_001.png scene_001.xml object 1: box"
    ):
        tables.load(tmp_path)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda d: d["annotations"][0].update(category_id=99),
            r"unknown category ids 99; allowed: .*1, 2",
        ),
        (
            lambda d: d["annotations"][0].update(image_id=77),
            r"refer to image ids not in 'images', e.g. 77",
        ),
        (lambda d: d.update(categories=[]), r"declares no classes"),
        (lambda d: d["categories"][1].update(name=" "), r"1 classes have an empty name"),
        (lambda d: d.update(annotations=[]), r"has no boxes"),
        (lambda d: d.pop("images"), r"has no 'images' list"),
        (
            lambda d: d["annotations"][0].update(bbox=[1, 2, 3]),
            r"1 annotations have a 'bbox' that is not 4 numbers \[x, y, width, height\], "
            r"e.g. images/img_0001.jpg annotation id 1: \[1, 2, 3\]",
        ),
    ],
)
def test_bad_coco_annotations(tmp_path, edit, message):
    write_coco(tmp_path, 3)
    _edit_coco(tmp_path, edit)
    with pytest.raises(DataError, match=message):
        tables.load(tmp_path)


def test_empty_voc_class_name(tmp_path):
    write_voc(tmp_path, 2)
    for xml in (tmp_path / "annotations").glob("*.xml"):
        xml.write_text(xml.read_text().replace("<name>red</name>", "<name></name>"))
        xml.write_text(xml.read_text().replace("<name>green</name>", "<name></name>"))
    with pytest.raises(DataError, match="empty name"):
        tables.load(tmp_path)


def test_layout_not_recognised(tmp_path):
    (tmp_path / "pictures").mkdir()
    with pytest.raises(DataError, match=r"neither COCO .* nor Pascal VOC .*found: pictures"):
        tables.load(tmp_path)


def test_two_coco_files_are_ambiguous(tmp_path):
    write_coco(tmp_path, 2)
    shutil.copy(tmp_path / "annotations.json", tmp_path / "more.json")
    with pytest.raises(DataError, match=r"found 2 COCO annotation files .*exactly one"):
        tables.load(tmp_path)


def test_split_needs_two_images(tmp_path):
    write_coco(tmp_path, 1)
    with pytest.raises(DataError, match="at least 2 are needed"):
        tables.split(tables.load(tmp_path), 0.2, seed=0)


def test_samples_carry_the_images_pixels_and_labels(tmp_path):
    write_coco(tmp_path, 3)
    table = tables.load(tmp_path)
    sample = dataset.build(table, 128, train=False)[0]
    assert sample.pixels.shape == (128, 128, 3) and sample.pixels.dtype == np.uint8
    assert sample.labels.tolist() == table.annotations(0)[1].tolist()


# ---- each box on its own, ids as COCO allows, paths, layouts (issue 10)


@pytest.mark.parametrize(
    ("bbox", "rule"),
    [
        (float("nan"), r"have a coordinate that is not a finite number \(NaN or infinity\)"),
        (float("inf"), r"have a coordinate that is not a finite number"),
        (-5.0, r"have no area"),
    ],
)
def test_each_box_is_checked_and_named(tmp_path, bbox, rule):
    write_coco(tmp_path, 3)
    _edit_coco(tmp_path, lambda d: d["annotations"][1].update(id=902, bbox=[10, 10, bbox, 20]))
    assert json.dumps(bbox) in (tmp_path / "annotations.json").read_text()  # NaN, Infinity
    image = json.loads((tmp_path / "annotations.json").read_text())["annotations"][1]["image_id"]
    with pytest.raises(
        DataError,
        match=rf"1 of \d+ boxes in annotations.json {rule}.*, e.g. "
        rf"images/img_{image:04d}.jpg annotation id 902: box",
    ):
        tables.load(tmp_path)


def test_box_lengths_are_checked_one_by_one(tmp_path):
    write_coco(tmp_path, 3)

    def edit(doc):
        doc["annotations"][0]["bbox"] = [1, 2, 3, 4, 0.5]  # a rotated box: 5 numbers
        doc["annotations"][1]["bbox"] = [1, 2, 3]  # with this one, 8 numbers in all

    _edit_coco(tmp_path, edit)
    with pytest.raises(
        DataError,
        match=r"2 annotations have a 'bbox' that is not 4 numbers .*annotation id 1: "
        r"\[1, 2, 3, 4, 0.5\]; .*annotation id 2: \[1, 2, 3\]",
    ):
        tables.load(tmp_path)
    _edit_coco(tmp_path, lambda d: d["annotations"][0].update(bbox=[1, 2, "3", 4]))
    with pytest.raises(DataError, match=r"annotation id 1: \[1, 2, '3', 4\]"):
        tables.load(tmp_path)


def test_voc_nan_coordinate_is_named(tmp_path):
    write_voc(tmp_path, 2)
    xml = tmp_path / "annotations" / "scene_001.xml"
    text = xml.read_text()
    xml.write_text(text[: text.index("<xmin>") + 6] + "nan" + text[text.index("</xmin>") :])
    with pytest.raises(DataError, match=r"not a finite number .*scene_001.xml object 1"):
        tables.load(tmp_path)


def test_ids_are_read_as_coco_allows(tmp_path):
    write_coco(tmp_path, 3)
    huge = [2**63, 2**64 + 7, 10**30]

    def edit(doc):
        for image, new_id in zip(doc["images"], huge, strict=True):
            old = image["id"]
            image["id"] = new_id
            for annotation in doc["annotations"]:
                if annotation["image_id"] == old:
                    annotation["image_id"] = new_id
        for annotation in doc["annotations"]:
            annotation["id"] = 2**70 + annotation["id"]

    _edit_coco(tmp_path, edit)
    assert len(tables.load(tmp_path)) == 3

    def strings(doc):
        ids = {image["id"]: f"frame-{i}" for i, image in enumerate(doc["images"])}
        for image in doc["images"]:
            image["id"] = ids[image["id"]]
        for annotation in doc["annotations"]:
            annotation["image_id"] = ids[annotation["image_id"]]
        for category in doc["categories"]:
            category["id"] = category["name"]
        for annotation in doc["annotations"]:
            annotation["category_id"] = CLASSES[annotation["category_id"] - 1]

    write_coco(tmp_path, 3)
    _edit_coco(tmp_path, strings)
    table = tables.load(tmp_path)
    assert table.class_names == CLASSES and table.num_boxes > 0
    _edit_coco(tmp_path, lambda d: d["images"][1].update(id="frame-0"))
    with pytest.raises(DataError, match=r"duplicate image ids, e\.g\. frame-0"):
        tables.load(tmp_path)


@pytest.mark.parametrize("written", ["./images/{}", "images\\{}", "./{}", ".\\images\\{}"])
def test_file_names_are_normalised(tmp_path, written):
    write_coco(tmp_path, 2)
    _edit_coco(
        tmp_path,
        lambda d: [im.update(file_name=written.format(im["file_name"])) for im in d["images"]],
    )
    table = tables.load(tmp_path)
    assert table.paths[0] == str(tmp_path / "images" / "img_0001.jpg")


def test_coco_and_voc_in_one_channel_is_refused_naming_both(tmp_path):
    write_coco(tmp_path, 2)
    write_voc(tmp_path, 2)
    with pytest.raises(
        DataError,
        match=r"holds both COCO \(annotations.json\) and Pascal VOC \(annotations/\*.xml\)",
    ):
        tables.load(tmp_path)


def test_exif_orientation_is_named_when_sizes_differ(tmp_path):
    write_coco(tmp_path, 2)
    path = tmp_path / "images" / "img_0001.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90: displayed 80x96
    Image.open(path).save(path, exif=exif)
    with pytest.raises(
        DataError,
        match=r"img_0001.jpg: the annotation says 96x80, the image shows 80x96 \(stored 96x80, "
        r"turned by its EXIF orientation 6; the annotation matches the stored pixels, so the "
        r"tool that wrote it ignored the orientation",
    ):
        tables.load(tmp_path)


# ---- unreadable images: found up front (cheap) or at first decode


def _truncate(path: Path) -> None:
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])  # an interrupted upload: header intact


def _corrupt_middle(path: Path) -> None:
    content = bytearray(path.read_bytes())
    middle = len(content) // 2
    content[middle : middle + 200] = bytes(200)  # header and end marker intact
    path.write_bytes(bytes(content))


def test_truncated_and_garbage_images_are_found_before_training(tmp_path):
    write_coco(tmp_path, 5)
    _truncate(tmp_path / "images" / "img_0002.jpg")
    (tmp_path / "images" / "img_0004.jpg").write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(
        DataError,
        match=r"2 of 5 images are not readable images \(not an image, or truncated\), "
        r"e.g. images/img_0002.jpg, images/img_0004.jpg; max_bad_images = 0",
    ):
        tables.load(tmp_path)


def test_max_bad_images_skips_them_with_their_boxes(tmp_path, caplog):
    write_coco(tmp_path, 5)
    _truncate(tmp_path / "images" / "img_0002.jpg")
    whole = tables.load(tmp_path, check_images=False)

    table = tables.load(tmp_path, max_bad_images=1)

    assert [Path(p).name for p in table.paths] == [
        "img_0001.jpg",
        "img_0003.jpg",
        "img_0004.jpg",
        "img_0005.jpg",
    ]
    assert table.num_boxes == whole.num_boxes - len(whole.annotations(1)[0])
    assert table.annotations(1)[0].tolist() == whole.annotations(2)[0].tolist()
    assert "skipping 1 unreadable images (max_bad_images = 1): images/img_0002.jpg" in caplog.text


def test_an_image_that_fails_to_decode_is_a_data_error_naming_it(tmp_path, caplog):
    write_voc(tmp_path, 3)
    _corrupt_middle(tmp_path / "images" / "scene_001.png")
    table = tables.load(tmp_path)  # the cheap check passes: header and end marker are there

    with pytest.raises(DataError, match=r"image .*images/scene_001.png cannot be decoded .*"):
        dataset.build(table, 128, train=False)[1]

    skipping = dataset.build(table, 128, train=False, max_bad_images=1)
    assert skipping[1].record_id == 2
    assert "skipping unreadable image" in caplog.text and "scene_001.png" in caplog.text

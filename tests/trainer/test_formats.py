"""YOLO, Ground Truth manifests, split folders and the format registry, on generated data and on
the shared real samples converted here."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.support.converters import coco_to_manifest, coco_to_yolo
from tests.support.synthetic import CLASSES, write_coco, write_voc
from trainer import tables
from trainer.errors import DataError


def _same_content(a: tables.DetectionTable, b: tables.DetectionTable) -> None:
    assert a.class_names == b.class_names
    by_name = {Path(p).name: i for i, p in enumerate(b.paths)}
    assert sorted(by_name) == sorted(Path(p).name for p in a.paths)
    for i, path in enumerate(a.paths):
        j = by_name[Path(path).name]
        assert (a.widths[i], a.heights[i]) == (b.widths[j], b.heights[j])
        boxes_a, labels_a = a.annotations(i)
        boxes_b, labels_b = b.annotations(j)
        assert labels_a.tolist() == labels_b.tolist()
        np.testing.assert_allclose(boxes_a, boxes_b, atol=0.05)


@pytest.mark.parametrize("names_as_dict", [False, True])
def test_yolo_reads_what_coco_reads(tmp_path, names_as_dict):
    write_coco(tmp_path / "coco", 6)
    coco_to_yolo(tmp_path / "coco", tmp_path / "yolo", names_as_dict=names_as_dict)
    _same_content(tables.load(tmp_path / "yolo"), tables.load(tmp_path / "coco"))


def test_shared_coco_sample_as_yolo_and_ground_truth(tmp_path, shared_datasets):
    coco = tables.load(shared_datasets / "coco-sample")
    shutil.copytree(shared_datasets / "coco-sample", tmp_path / "coco")
    coco_to_yolo(tmp_path / "coco", tmp_path / "yolo")
    coco_to_manifest(tmp_path / "coco", tmp_path / "gt")
    yolo = tables.load(tmp_path / "yolo")
    assert (len(yolo), yolo.num_boxes, len(yolo.class_names)) == (6, 35, 80)
    _same_content(yolo, coco)
    ground_truth = tables.load(tmp_path / "gt")
    _same_content(ground_truth, coco)


def test_yolo_image_without_label_file_has_no_objects(tmp_path):
    write_coco(tmp_path / "coco", 4)
    coco_to_yolo(tmp_path / "coco", tmp_path / "yolo")
    (tmp_path / "yolo" / "train" / "labels" / "img_0002.txt").unlink()
    (tmp_path / "yolo" / "train" / "labels" / "img_0003.txt").write_text("\n")
    table = tables.load(tmp_path / "yolo")
    assert len(table) == 4
    assert np.diff(table.offsets).tolist()[1:3] == [0, 0]


def test_yolo_split_folders_are_training_and_validation(tmp_path):
    write_coco(tmp_path / "a", 5, seed=1)
    write_coco(tmp_path / "b", 3, seed=2)
    coco_to_yolo(tmp_path / "a", tmp_path / "yolo", "train")
    coco_to_yolo(tmp_path / "b", tmp_path / "yolo", "valid")
    train, valid = tables.load_splits(tmp_path / "yolo")
    assert (len(train), len(valid)) == (5, 3)
    assert all("/valid/images/" in p for p in valid.paths)
    assert valid.class_names == train.class_names == CLASSES


def test_yolo_path_key_and_absolute_paths_from_the_exporting_machine(tmp_path):
    write_coco(tmp_path / "coco", 3)
    coco_to_yolo(tmp_path / "coco", tmp_path / "yolo")
    doc = yaml.safe_load((tmp_path / "yolo" / "data.yaml").read_text())
    doc.update(path="/content/datasets/export", train="train/images")
    (tmp_path / "yolo" / "data.yaml").write_text(yaml.safe_dump(doc))
    assert len(tables.load(tmp_path / "yolo")) == 3
    doc.update(train="../../elsewhere/images")
    (tmp_path / "yolo" / "data.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(DataError, match=r"train: '../../elsewhere/images' .* not in the channel"):
        tables.load(tmp_path / "yolo")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("0 0.5 0.5 0.2", r"train/labels/img_0001.txt line 2: '0 0.5 0.5 0.2' has 4 values"),
        ("0 0.5 0.5 0.2 x", r"img_0001.txt line 2: '0 0.5 0.5 0.2 x' is not 5 finite numbers"),
        ("7 0.5 0.5 0.2 0.2", r"class that is not one of the 2 classes .*line 2: class 7"),
        ("0 48 40 10 10", r"normalized coordinates outside \[0, 1\], e.g. train/labels/img_0001"),
        ("0 0.02 0.5 0.2 0.2", r"lie outside their image by more than 1 px, .*img_0001.txt line 2"),
    ],
)
def test_bad_yolo_lines_are_named_with_file_and_line(tmp_path, line, message):
    write_coco(tmp_path / "coco", 2)
    coco_to_yolo(tmp_path / "coco", tmp_path / "yolo")
    label = tmp_path / "yolo" / "train" / "labels" / "img_0001.txt"
    label.write_text(label.read_text().splitlines()[0] + "\n" + line + "\n")
    with pytest.raises(DataError, match=message):
        tables.load(tmp_path / "yolo")


def test_yolo_box_a_pixel_over_the_edge_is_clipped(tmp_path):
    write_coco(tmp_path / "coco", 2)
    coco_to_yolo(tmp_path / "coco", tmp_path / "yolo")
    label = tmp_path / "yolo" / "train" / "labels" / "img_0001.txt"
    label.write_text("1 0.5 0.5 1.0 1.0\n0 0.996 0.5 0.016 0.2\n")  # 0.768 px over 96
    table = tables.load(tmp_path / "yolo")
    i = [Path(p).name for p in table.paths].index("img_0001.jpg")
    assert table.annotations(i)[0][:, 2].max() == 96


def test_bad_yolo_names(tmp_path):
    write_coco(tmp_path / "coco", 2)
    coco_to_yolo(tmp_path / "coco", tmp_path / "yolo")
    (tmp_path / "yolo" / "data.yaml").write_text("train: train/images\nnames: {0: a, 2: b}\n")
    with pytest.raises(DataError, match=r"'names' has keys 0, 2; allowed: the class ids 0, 1"):
        tables.load(tmp_path / "yolo")


def test_ground_truth_manifest_with_split_folders(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    write_coco(tmp_path / "a", 4, seed=1)
    write_coco(tmp_path / "b", 2, seed=2)
    coco_to_manifest(tmp_path / "a", tmp_path / "gt" / "train")
    coco_to_manifest(tmp_path / "b", tmp_path / "gt" / "val")
    train, valid = tables.load_splits(tmp_path / "gt")
    assert (len(train), len(valid)) == (4, 2) and train.class_names == CLASSES
    assert "train: Ground Truth layout, 4 images" in caplog.text
    _same_content(train, tables.load(tmp_path / "a"))


def test_ground_truth_finds_images_by_key_and_refuses_unknown_class(tmp_path):
    write_coco(tmp_path / "coco", 3)
    manifest = coco_to_manifest(tmp_path / "coco", tmp_path / "gt")
    (tmp_path / "gt" / "jobs" / "raw").mkdir(parents=True)
    for image in (tmp_path / "gt").glob("*.jpg"):
        image.rename(tmp_path / "gt" / "jobs" / "raw" / image.name)
    assert tables.load(tmp_path / "gt").paths[0].endswith("gt/jobs/raw/img_0001.jpg")
    manifest.write_text(manifest.read_text().replace('"class_id": 1', '"class_id": 5', 1))
    with pytest.raises(DataError, match=r"class ids 5 are not in any line's class-map"):
        tables.load(tmp_path / "gt")
    manifest.write_text(manifest.read_text().replace("source-ref", "source", 1))
    with pytest.raises(DataError, match=r"output.manifest line 1 .*missing or bad field"):
        tables.load(tmp_path / "gt")


def test_ground_truth_missing_image_is_named(tmp_path):
    write_coco(tmp_path / "coco", 3)
    coco_to_manifest(tmp_path / "coco", tmp_path / "gt")
    (tmp_path / "gt" / "img_0002.jpg").unlink()
    with pytest.raises(DataError, match=r"1 of 3 images named in output.manifest are missing"):
        tables.load(tmp_path / "gt")


def test_roboflow_coco_split_folders(tmp_path):
    for split, count in (("train", 4), ("valid", 2)):
        write_coco(tmp_path / split, count, seed=count)
        for image in (tmp_path / split / "images").iterdir():
            image.rename(tmp_path / split / image.name)
        (tmp_path / split / "annotations.json").rename(tmp_path / split / "_annotations.coco.json")
    train, valid = tables.load_splits(tmp_path)
    assert (len(train), len(valid)) == (4, 2)


def test_coco_instances_train_and_val_at_the_root(tmp_path):
    write_coco(tmp_path / "a", 4, seed=1)
    write_coco(tmp_path / "b", 2, seed=2)
    (tmp_path / "c" / "train2017").mkdir(parents=True)
    (tmp_path / "c" / "val2017").mkdir()
    for folder, split, name in (("a", "train2017", "train"), ("b", "val2017", "val")):
        for image in (tmp_path / folder / "images").iterdir():
            shutil.copy(image, tmp_path / "c" / split / image.name)
        shutil.copy(
            tmp_path / folder / "annotations.json", tmp_path / "c" / f"instances_{name}.json"
        )
    train, valid = tables.load_splits(tmp_path / "c")
    assert (len(train), len(valid)) == (4, 2)
    assert "/val2017/" in valid.paths[0]


def test_without_split_the_channel_is_one_table(tmp_path):
    write_coco(tmp_path, 3)
    train, valid = tables.load_splits(tmp_path)
    assert len(train) == 3 and valid is None


def test_two_formats_or_none_are_named(tmp_path):
    write_coco(tmp_path / "coco", 2)
    coco_to_yolo(tmp_path / "coco", tmp_path / "both", "train")
    shutil.copy(tmp_path / "coco" / "annotations.json", tmp_path / "both")
    with pytest.raises(
        DataError, match=r"holds both COCO \(annotations.json\) and YOLO \(data.yaml"
    ):
        tables.load(tmp_path / "both")
    (tmp_path / "none").mkdir()
    (tmp_path / "none" / "notes.txt").write_text("")
    with pytest.raises(
        DataError,
        match=r"neither COCO .* nor YOLO \(data.yaml.* nor SageMaker Ground Truth .*"
        r"found: notes.txt",
    ):
        tables.load(tmp_path / "none")


def test_ground_truth_bad_json_line_is_named(tmp_path):
    write_coco(tmp_path / "coco", 2)
    manifest = coco_to_manifest(tmp_path / "coco", tmp_path / "gt")
    manifest.write_text(manifest.read_text() + "{not json\n")
    with pytest.raises(DataError, match=r"output.manifest line 3 is not valid JSON"):
        tables.load(tmp_path / "gt")


def test_yolo_split_as_a_txt_list_of_images(tmp_path):
    write_coco(tmp_path / "coco", 4)
    coco_to_yolo(tmp_path / "coco", tmp_path / "yolo")
    (tmp_path / "yolo" / "train.txt").write_text(
        "./train/images/img_0001.jpg\n./train/images/img_0003.jpg\n"
    )
    doc = yaml.safe_load((tmp_path / "yolo" / "data.yaml").read_text())
    (tmp_path / "yolo" / "data.yaml").write_text(yaml.safe_dump({**doc, "train": "train.txt"}))
    table = tables.load(tmp_path / "yolo")
    assert [Path(p).name for p in table.paths] == ["img_0001.jpg", "img_0003.jpg"]


def test_voc_split_folders(tmp_path):
    write_voc(tmp_path / "train", 4, seed=1)
    write_voc(tmp_path / "val", 2, seed=2)
    train, valid = tables.load_splits(tmp_path)
    assert (len(train), len(valid)) == (4, 2)
    train_only, none = tables.load_splits(tmp_path / "train")
    assert len(train_only) == 4 and none is None


def test_yolo_sizes_are_read_from_headers_without_the_full_check(tmp_path):
    write_coco(tmp_path / "coco", 3)
    coco_to_yolo(tmp_path / "coco", tmp_path / "yolo")
    (tmp_path / "yolo" / "data.yaml").rename(tmp_path / "yolo" / "dataset.yaml")
    table = tables.load(tmp_path / "yolo", check_images=False)
    assert table.widths.tolist() == [96, 96, 96] and table.heights.tolist() == [80, 80, 80]


def test_an_unrelated_yaml_beside_coco_is_not_yolo(tmp_path):
    write_coco(tmp_path, 2)
    (tmp_path / "config.yaml").write_text("owner: someone\n")
    assert len(tables.load(tmp_path)) == 2

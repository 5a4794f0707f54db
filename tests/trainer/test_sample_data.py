import hashlib
import json

import pytest
from PIL import Image

from trainer import sample_data


def _digest(folder):
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files
    }


def test_same_arguments_give_identical_files(tmp_path):
    first = sample_data.generate(tmp_path / "a", images=6, image_size=64, seed=3)
    second = sample_data.generate(tmp_path / "b", images=6, image_size=64, seed=3)

    assert _digest(first.folder) == _digest(second.folder)
    assert _digest(first.folder) != _digest(
        sample_data.generate(tmp_path / "c", images=6, seed=4).folder
    )


def test_coco_file_describes_every_image_and_box(tmp_path):
    dataset = sample_data.generate(tmp_path / "shapes", images=10, image_size=96)

    coco = json.loads((dataset.folder / "annotations.json").read_text())
    assert [c["name"] for c in coco["categories"]] == list(sample_data.CLASSES)
    assert len(coco["images"]) == dataset.images == 10
    assert len(coco["annotations"]) == dataset.boxes >= 10
    sizes = {i["id"]: (i["width"], i["height"]) for i in coco["images"]}
    for image in coco["images"]:
        with Image.open(dataset.folder / "images" / image["file_name"]) as pixels:
            assert pixels.size == (image["width"], image["height"]) == (96, 96)
    for box in coco["annotations"]:
        x, y, w, h = box["bbox"]
        width, height = sizes[box["image_id"]]
        assert 0 <= x < x + w <= width and 0 <= y < y + h <= height
        assert box["category_id"] in {c["id"] for c in coco["categories"]}


def test_regenerating_replaces_the_folder_whole(tmp_path):
    folder = tmp_path / "shapes"
    sample_data.generate(folder, images=8, image_size=64)
    (folder / "stale.txt").write_text("old")

    sample_data.generate(folder, images=4, image_size=64)

    assert not (folder / "stale.txt").exists()
    assert len(list((folder / "images").iterdir())) == 4
    assert [p.name for p in tmp_path.iterdir()] == ["shapes"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"images": 1}, "images = 1 is too few"),
        ({"image_size": 16}, "image_size = 16 is too small"),
    ],
)
def test_bad_arguments_name_the_value_and_the_limit(tmp_path, options, message):
    with pytest.raises(ValueError, match=message):
        sample_data.generate(tmp_path / "x", **options)
    assert not (tmp_path / "x").exists()

"""A COCO folder rewritten in the other layouts the trainer reads, for tests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml


def coco_to_yolo(source: Path, target: Path, split: str = "train", *, names_as_dict=False) -> None:
    """A COCO folder rewritten as an Ultralytics (Roboflow-style) export: split/images, labels."""
    doc = json.loads((source / "annotations.json").read_text())
    ids = [c["id"] for c in doc["categories"]]
    names = [c["name"] for c in doc["categories"]]
    (target / split / "images").mkdir(parents=True, exist_ok=True)
    (target / split / "labels").mkdir(parents=True, exist_ok=True)
    for image in doc["images"]:
        name = Path(image["file_name"]).name
        shutil.copy(source / "images" / name, target / split / "images" / name)
        w, h = image["width"], image["height"]
        lines = [
            f"{ids.index(a['category_id'])} {(x + bw / 2) / w:.6f} {(y + bh / 2) / h:.6f} "
            f"{bw / w:.6f} {bh / h:.6f}"
            for a in doc["annotations"]
            if a["image_id"] == image["id"] and not a.get("iscrowd")
            for x, y, bw, bh in [a["bbox"]]
        ]
        if lines:
            (target / split / "labels" / (Path(name).stem + ".txt")).write_text("\n".join(lines))
    config = {
        "train": "../train/images",
        "val": "../valid/images",
        "nc": len(names),
        "names": dict(enumerate(names)) if names_as_dict else names,
    }
    (target / "data.yaml").write_text(yaml.safe_dump(config))


def coco_to_manifest(source: Path, target: Path, name: str = "output.manifest") -> Path:
    """A COCO folder rewritten as a Ground Truth bounding-box job's output manifest."""
    doc = json.loads((source / "annotations.json").read_text())
    ids = [c["id"] for c in doc["categories"]]
    target.mkdir(parents=True, exist_ok=True)
    lines = []
    for image in doc["images"]:
        file_name = Path(image["file_name"]).name
        shutil.copy(source / "images" / file_name, target / file_name)
        boxes = [
            a for a in doc["annotations"] if a["image_id"] == image["id"] and not a.get("iscrowd")
        ]
        lines.append(
            {
                "source-ref": f"s3://labelling-bucket/jobs/raw/{file_name}",
                "my-boxes": {
                    "image_size": [
                        {"width": image["width"], "height": image["height"], "depth": 3}
                    ],
                    "annotations": [
                        {
                            "class_id": ids.index(a["category_id"]),
                            "left": a["bbox"][0],
                            "top": a["bbox"][1],
                            "width": a["bbox"][2],
                            "height": a["bbox"][3],
                        }
                        for a in boxes
                    ],
                },
                "my-boxes-metadata": {
                    "objects": [{"confidence": 0.93} for _ in boxes],
                    "class-map": {str(i): c["name"] for i, c in enumerate(doc["categories"])},
                    "type": "groundtruth/object-detection",
                    "human-annotated": "yes",
                    "creation-date": "2026-11-18T02:53:27.123456",
                    "job-name": "labeling-job/my-boxes",
                },
            }
        )
    path = target / name
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return path

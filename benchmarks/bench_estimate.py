"""The preflight's duration estimate against the real training time, per case, old and new.

    .venv/bin/python benchmarks/bench_estimate.py [--cases rehearsal,photos,photos-0]
        [--epochs N] [--photos COCO_FOLDER] [--logs DIR]

Each case runs the real trainer (``train train`` on a temporary /opt/ml tree, as the tests do)
and reads its log:

- **estimate**: the preflight's figure, ``Preflight passed: ... will take about 3 min (172 s)``;
- **old**: the estimate before this change, from the same run's ``Preflight timings`` line: the
  first (cold) training step on the largest images, or their batch's decoding per worker if
  slower (``max``, even with no workers), and the first (cold) validation step, times the steps
  and the epochs;
- **actual**: the real training time, from the log's ``Start training`` line to its ``Saving
  the model`` line: every epoch's training and validation, metric line and checkpoint (not the
  set-up, the preflight, nor the final model and report).

Cases: ``rehearsal``, the rehearsal's sample (trainer/sample_data.py, 96 generated 128 px
PNGs) with its hyperparameters (detrain/rehearsal.py); ``photos``, real COCO photos
(``--photos``, default the shared coco-sample beside the repository: 640 px JPEGs of 160-330
kB) indexed 300 times by a generated COCO file whose images link to the same files,
EfficientDet tf_lite0 at 256 px, batch 8, 2 epochs, the default loader workers
(``num_workers=-1``); ``photos-0``, the same with ``num_workers=0``. Last line per case:
``ratio estimate/actual <new> (old <old>)``; the goal is 0.5 to 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import tempfile
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "training_image"))
sys.path.insert(0, str(ROOT / "tests" / "trainer"))
sys.path.insert(0, str(ROOT))

from opt_ml_tree import OptMl, run_train  # noqa: E402

from detrain.rehearsal import REHEARSAL_HYPERPARAMETERS  # noqa: E402
from trainer import sample_data  # noqa: E402

SHARED_PHOTOS = ROOT.parent / "shared" / "datasets" / "coco-sample"
PHOTO_COPIES = 300
PHOTO_HYPERPARAMETERS = {
    "model": "efficientdet",
    "backbone": "tf_lite0",
    "pretrained": "false",
    "epochs": "2",
    "batch_size": "8",
    "image_size": "256",
    "valid_fraction": "0.2",
    "amp": "false",
}
TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")
PASSED = re.compile(r"Preflight passed: .* (\d+) epochs of (\d+) steps will take .*\((\d+) s\)")
TIMINGS = re.compile(
    r"largest images: training step ([\d.]+) \(cold\), decoding ([\d.]+) a batch, "
    r"validation step ([\d.]+) \(cold\);.* (\d+) loader workers"
)
SPLIT = re.compile(r"(\d+) training images, (\d+) validation images")


def rehearsal_channel(folder: Path) -> dict[str, str]:
    sample_data.generate(folder, images=sample_data.DEFAULT_IMAGES)
    return dict(REHEARSAL_HYPERPARAMETERS)


def photo_channel(folder: Path, photos: Path) -> None:
    """A COCO channel of ``PHOTO_COPIES`` images, each a link to one of the shared photos, with
    that photo's boxes."""
    doc = json.loads((photos / "annotations.json").read_text())
    (folder / "images").mkdir(parents=True)
    images, annotations = [], []
    for i in range(PHOTO_COPIES):
        source = doc["images"][i % len(doc["images"])]
        name = f"{i:05d}-{source['file_name']}"
        (folder / "images" / name).symlink_to(photos / "images" / source["file_name"])
        images.append({**source, "id": i + 1, "file_name": name})
        for box in (a for a in doc["annotations"] if a["image_id"] == source["id"]):
            annotations.append({**box, "id": len(annotations) + 1, "image_id": i + 1})
    index = {"images": images, "annotations": annotations, "categories": doc["categories"]}
    (folder / "annotations.json").write_text(json.dumps(index))


def _time(line: str) -> datetime:
    return datetime.strptime(TIMESTAMP.match(line).group(1), "%Y-%m-%d %H:%M:%S,%f")


def read_log(stdout: str) -> dict[str, float]:
    """Estimate, old estimate and actual training seconds from one run's log."""
    lines = stdout.splitlines()

    def line(text: str) -> str:
        found = [x for x in lines if text in x and TIMESTAMP.match(x)]
        if not found:
            raise SystemExit(f"no log line with {text!r}; the log ends:\n{stdout[-3000:]}")
        return found[0]

    epochs, steps, estimate = map(int, PASSED.search(line("Preflight passed")).groups())
    cold_step, cold_decode, cold_valid, workers = TIMINGS.search(line("Preflight timings")).groups()
    _, valid_images = map(int, SPLIT.search(line("validation images")).groups())
    batch_size = int(re.search(r"'batch_size': (\d+)", line("hyperparameters")).group(1))
    valid_steps = math.ceil(valid_images / batch_size)
    old_step = max(float(cold_step), float(cold_decode) / max(1, int(workers)))
    old = epochs * (old_step * steps + float(cold_valid) * valid_steps)
    actual = (_time(line("Saving the model")) - _time(line("Start training"))).total_seconds()
    epoch_seconds = sum(float(s) for s in re.findall(r"epoch_seconds=([\d.]+)", stdout))
    return {"estimate": estimate, "old": old, "actual": actual, "epoch_seconds": epoch_seconds}


def run_case(name: str, epochs: int | None, photos: Path, logs: Path | None) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        opt_ml = OptMl(Path(tmp) / "opt-ml")
        channel = opt_ml.channel("training")
        if name == "rehearsal":
            hyperparameters = rehearsal_channel(channel)
        else:
            photo_channel(channel, photos)
            hyperparameters = dict(PHOTO_HYPERPARAMETERS)
            if name == "photos-0":
                hyperparameters["num_workers"] = "0"
        if epochs:
            hyperparameters["epochs"] = str(epochs)
        opt_ml.hyperparameters(hyperparameters)
        result = run_train(opt_ml, timeout=3600)
        if logs:
            logs.mkdir(parents=True, exist_ok=True)
            (logs / f"{name}.log").write_text(result.stdout + result.stderr)
        if result.returncode != 0:
            raise SystemExit(f"{name}: exit {result.returncode}\n{result.stdout[-3000:]}")
        return read_log(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="rehearsal,photos,photos-0")
    parser.add_argument("--epochs", type=int, help="instead of each case's own")
    parser.add_argument("--photos", type=Path, default=SHARED_PHOTOS, help="a COCO folder")
    parser.add_argument("--logs", type=Path, help="write each case's trainer log here")
    args = parser.parse_args()
    cases = args.cases.split(",")
    if any(c.startswith("photos") for c in cases) and not args.photos.is_dir():
        raise SystemExit(f"the photo cases need a COCO folder of photos: {args.photos} is none")
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    for name in cases:
        figures = run_case(name, args.epochs, args.photos, args.logs)
        print(
            f"{name:10} estimate {figures['estimate']:7.1f} s  old {figures['old']:7.1f} s  "
            f"actual {figures['actual']:7.1f} s (epoch_seconds sum {figures['epoch_seconds']:.1f})"
            f"  load {os.getloadavg()[0]:.1f}"
        )
        print(
            f"{name:10} ratio estimate/actual {figures['estimate'] / figures['actual']:.2f} "
            f"(old {figures['old'] / figures['actual']:.2f})",
            flush=True,
        )


if __name__ == "__main__":
    main()

"""GPU training throughput per model, precision and loader workers, as one table.

    python benchmarks/bench_gpu_train.py                  # on a CUDA machine: 512 px, batch 16
    python benchmarks/bench_gpu_train.py --smoke          # a tiny CPU run of the same code
    python benchmarks/bench_gpu_train.py --channels-last --precisions bf16 --workers all

For each model (Faster R-CNN R50-FPN, EfficientDet-D0 tf_d0), precision (fp32, bf16 autocast,
fp16 autocast with a GradScaler) and loader worker count (4, what one GPU of an ml.g5.xlarge
gets, and all of this machine's vCPUs):

- end to end: the trainer's epoch loop (``engine.train_one_epoch``) over the trainer's input
  pipeline (``dataset.build`` + ``batches.loader`` with ``loading.options``), images/s of the
  second epoch (the first warms up workers, cuDNN and the allocator);
- step only: the same loop over batches already on the GPU (once per model and precision);
- peak GPU memory; validation share: one ``engine.validate`` pass (forward, detections, COCO
  mAP) over a validation split of 20 % of the images, over that plus the training epoch.

Generated 640x480 JPEGs (the machine needs no dataset). Rows print as they finish; the table
is repeated at the end, then the mixed-precision / fp32 ratios.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "training_image"))
sys.path.insert(0, str(ROOT))  # tests.support: the generated datasets the tests use

from contract.hyperparameters import from_values  # noqa: E402
from tests.support.synthetic import write_coco  # noqa: E402
from trainer import batches, dataset, engine, loading, model, tables  # noqa: E402

DECODE_ON = "cpu"  # --decode-on: where the loaders' JPEGs are decoded (trainer/device_decode.py)
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
FULL = {
    "models": [("faster_rcnn", "resnet50_fpn"), ("efficientdet", "tf_d0")],
    "image_size": 512,
    "batch": 16,
    "images": 640,  # 512 to train, 128 (20 %) to validate
    "photo": (640, 480),
    "step_batches": 8,
}
SMOKE = {
    "models": [("faster_rcnn", "resnet18_fpn"), ("efficientdet", "tf_lite0")],
    "image_size": 128,
    "batch": 2,
    "images": 5,
    "photo": (160, 120),
    "step_batches": 1,
}
HEADER = (
    "| model | precision | workers | end to end img/s | step only img/s | end to end / step "
    "| peak GPU memory | validation share |\n|---|---|---|---|---|---|---|---|"
)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class Run:
    """One model at one precision: its detector, optimizer and timed loops."""

    def __init__(self, size: dict, table, name, backbone, precision, device, channels_last):
        self.size, self.device, self.dtype = size, device, PRECISIONS[precision]
        self.train_table, self.valid_table = tables.split(table, 0.2, seed=0)
        self.hp = from_values(
            {
                "model": name,
                "backbone": backbone,
                "pretrained": False,
                "image_size": size["image_size"],
                "batch_size": size["batch"],
                "learning_rate": 0.01,
            }
        )
        torch.manual_seed(0)
        self.detector = model.create(self.hp, table.class_names)
        self.detector.channels_last = channels_last
        self.detector.to(device)
        self.sampler = engine.EpochSampler(len(self.train_table), seed=0, batch_size=size["batch"])
        self.opt = engine.optimizer(self.detector, self.hp)
        self.scheduler = engine.schedule(self.opt, self.sampler.steps(), 1000)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.dtype == torch.float16)

    def epoch(self, batches_) -> float:
        _sync(self.device)
        started = time.perf_counter()
        engine.train_one_epoch(
            self.detector,
            batches_,
            self.opt,
            self.scheduler,
            self.scaler,
            device=self.device,
            grad_clip_norm=self.hp.grad_clip_norm,
            stop=threading.Event(),
            amp_dtype=self.dtype,
        )
        _sync(self.device)
        return time.perf_counter() - started

    def loaders(self, workers: int):
        options = loading.options(workers, self.size["batch"], self.device)
        size, family = self.size["image_size"], self.detector.name
        on_device = DECODE_ON == "device"  # the training loop's to_device decodes the batch
        train = batches.loader(
            dataset.build(self.train_table, size, train=True, decode_on_device=on_device),
            family,
            train=True,
            sampler=self.sampler,
            **options,
        )
        valid = batches.loader(
            dataset.build(self.valid_table, size, train=False, decode_on_device=on_device),
            family,
            train=False,
            **options,
        )
        return train, valid

    def end_to_end(self, workers: int) -> dict:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        train, valid = self.loaders(workers)
        self.sampler.set_epoch(0)
        self.epoch(train)  # warm-up
        self.sampler.set_epoch(1)
        seconds = self.epoch(train)
        started = time.perf_counter()
        with torch.autocast(self.device.type, dtype=self.dtype or torch.float32,
                            enabled=self.dtype is not None):  # fmt: skip
            engine.validate(self.detector, valid, device=self.device, stop=threading.Event())
        _sync(self.device)
        validating = time.perf_counter() - started
        memory = torch.cuda.max_memory_allocated() / 2**30 if self.device.type == "cuda" else 0
        return {
            "images_per_s": self.sampler.steps() * self.size["batch"] / seconds,
            "validation_share": validating / (seconds + validating),
            "memory_gib": memory,
        }

    def step_only(self) -> float:
        train, _ = self.loaders(0)
        self.sampler.set_epoch(2)
        ready = []
        for (pixels, targets), records in train:
            moved = batches._move((pixels, targets), self.device)
            ready.append((moved, records))
            if len(ready) == self.size["step_batches"]:
                break
        self.epoch(ready)  # warm-up at this batch's shapes
        return len(ready) * self.size["batch"] / self.epoch(ready)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, on the CPU")
    parser.add_argument("--precisions", default="fp32,bf16,fp16")
    parser.add_argument("--workers", default="4,all", help="counts, or 'all' (the vCPUs)")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--decode-on", choices=("cpu", "device"), default="cpu")
    parser.add_argument("--models", default="", help="e.g. efficientdet (default: both)")
    parser.add_argument("--images", type=int, default=0, help="instead of the size's own")
    args = parser.parse_args()
    global DECODE_ON
    DECODE_ON = args.decode_on
    print(f"decode_on={DECODE_ON}")
    size = dict(SMOKE if args.smoke else FULL)
    size["images"] = args.images or size["images"]
    device = torch.device("cuda" if torch.cuda.is_available() and not args.smoke else "cpu")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        print(
            f"{torch.cuda.get_device_name(0)}, torch {torch.__version__} "
            f"(CUDA {torch.version.cuda})"
        )
    all_cpus = loading.vcpus()
    worker_counts = sorted(
        {all_cpus if w == "all" else min(int(w), all_cpus) for w in args.workers.split(",")}
    )
    precisions = args.precisions.split(",")
    wanted = set(filter(None, args.models.split(",")))
    rows, rates = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        write_coco(Path(tmp), size["images"], seed=3, size=size["photo"])
        table = tables.load(Path(tmp))
        print(
            f"{size['images']} generated {size['photo'][0]}x{size['photo'][1]} JPEGs (20 % to "
            f"validate) -> {size['image_size']} px, batch {size['batch']}, device {device}, "
            f"{all_cpus} vCPUs, channels_last {args.channels_last}\n{HEADER}",
            flush=True,
        )
        for name, backbone in size["models"]:
            if wanted and name not in wanted:
                continue
            for precision in precisions:
                run = Run(size, table, name, backbone, precision, device, args.channels_last)
                steps = run.step_only()
                for workers in worker_counts:
                    r = run.end_to_end(workers)
                    rates[(name, precision, workers)] = r["images_per_s"]
                    row = (
                        f"| {name}/{backbone} | {precision} | {workers} "
                        f"| {r['images_per_s']:.1f} | {steps:.1f} "
                        f"| {r['images_per_s'] / steps:.2f} | {r['memory_gib']:.1f} GiB "
                        f"| {r['validation_share']:.0%} |"
                    )
                    rows.append(row)
                    print(row, flush=True)
    print(f"\n{HEADER}\n" + "\n".join(rows))
    for (name, precision, workers), rate in rates.items():
        base = rates.get((name, "fp32", workers))
        if precision != "fp32" and base:
            print(f"{name} {precision}/fp32 with {workers} workers: {rate / base:.2f}x")


if __name__ == "__main__":
    main()

"""GPU training throughput, AMP off and on, at a realistic image size (run on a GPU machine).

    python benchmarks/bench_gpu_train.py            # on a CUDA machine
    python benchmarks/bench_gpu_train.py --smoke    # a tiny CPU run of the same code

For each model: the trainer's epoch loop over the real input pipeline (IceVision
records, albumentations, DataLoader workers), images/s of the second epoch; and
the same steps over batches already on the GPU ("step only"), which shows how
much of the time is the input pipeline. Ratio = AMP images/s over fp32 images/s.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "training_image"))
sys.path.insert(0, str(ROOT / "tests" / "trainer"))

from synthetic import write_coco  # noqa: E402

from contract.hyperparameters import from_values  # noqa: E402
from trainer import data, engine, model  # noqa: E402
from trainer.model import _to  # noqa: E402

SMOKE = "--smoke" in sys.argv
IMAGE_SIZE = 128 if SMOKE else 512
IMAGES = 16 if SMOKE else 512
PHOTO = (160, 120) if SMOKE else (640, 480)
WORKERS = 0 if SMOKE else 12
CONFIGS = (
    [("efficientdet", "tf_lite0", 4)]
    if SMOKE
    else [("faster_rcnn", "resnet50_fpn", 16), ("efficientdet", "tf_d0", 16)]
)


def measure(table, name: str, backbone: str, batch: int, amp: bool, device: torch.device) -> dict:
    hp = from_values(
        {
            "model": name,
            "backbone": backbone,
            "pretrained": False,
            "image_size": IMAGE_SIZE,
            "batch_size": batch,
            "learning_rate": 0.01,
            "amp": amp,
        }
    )
    torch.manual_seed(0)
    detector = model.create(hp, table.class_names).to(device)
    sampler = engine.EpochSampler(len(table), seed=0, batch_size=batch)
    loader = detector.kind.train_dl(
        data.dataset(table, IMAGE_SIZE, train=True),
        sampler=sampler,
        batch_size=batch,
        num_workers=WORKERS,
        pin_memory=device.type == "cuda",
        persistent_workers=WORKERS > 0,
    )
    opt = engine.optimizer(detector, hp)
    scheduler = engine.schedule(opt, sampler.steps(), 3)
    scaler = torch.amp.GradScaler(device.type, enabled=amp and device.type == "cuda")
    options = {"device": device, "grad_clip_norm": hp.grad_clip_norm, "stop": threading.Event()}

    def epoch(batches) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        engine.train_one_epoch(detector, batches, opt, scheduler, scaler, **options)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - started

    sampler.set_epoch(0)
    epoch(loader)  # warm-up: workers, cuDNN autotuning, allocator
    sampler.set_epoch(1)
    pipeline = sampler.steps() * batch / epoch(loader)
    on_device = [(_to(b, device), r) for b, r in list(loader)[: min(8, sampler.steps())]]
    steps = len(on_device) * batch / epoch(on_device)
    few = table.subset(list(range(min(len(table), 2 * batch))))
    valid = detector.kind.valid_dl(data.dataset(few, IMAGE_SIZE, train=False), batch_size=batch)
    validation = engine.validate(detector, valid, device=device, stop=threading.Event())
    memory = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else 0.0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    return {"pipeline": pipeline, "steps": steps, "memory": memory, "map": validation.map}


def main() -> None:
    device = torch.device("cuda" if torch.cuda.is_available() and not SMOKE else "cpu")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        gpu = torch.cuda.get_device_name(0)
        print(f"{gpu}, torch {torch.__version__} (CUDA {torch.version.cuda})")
    with tempfile.TemporaryDirectory() as tmp:
        write_coco(Path(tmp), IMAGES, seed=3, size=PHOTO)
        table = data.load(Path(tmp))
        print(
            f"{IMAGES} generated {PHOTO[0]}x{PHOTO[1]} JPEGs -> {IMAGE_SIZE}px, {WORKERS} workers"
        )
        for name, backbone, batch in CONFIGS:
            results = {
                amp: measure(table, name, backbone, batch, amp, device) for amp in (False, True)
            }
            for amp, r in results.items():
                print(
                    f"{name}/{backbone} batch {batch} amp={str(amp).lower():5} "
                    f"pipeline {r['pipeline']:7.1f} img/s  step only {r['steps']:7.1f} img/s  "
                    f"peak {r['memory']:.1f} GiB  (mAP on 2 batches {r['map']:.3f})",
                    flush=True,
                )
            ratio = results[True]["pipeline"] / results[False]["pipeline"]
            step_ratio = results[True]["steps"] / results[False]["steps"]
            print(
                f"{name}: AMP/fp32 pipeline {ratio:.2f}x, step only {step_ratio:.2f}x", flush=True
            )


if __name__ == "__main__":
    main()

"""Training-step throughput: the trainer's loop vs a bare torchvision loop, same model and data.

    .venv/bin/python benchmarks/bench_train_step.py [efficientdet|faster_rcnn]

Both loops run the same IceVision model (EfficientDet tf_lite0 by default, or
torchvision Faster R-CNN resnet18_fpn) from the same initial weights over the
same pre-collated batches; the trainer adds gradient clipping, the lr schedule,
the stop check and loss bookkeeping. Two warm-up rounds each, then rounds
alternate to share the machine's noise; the best round of each counts.
Ratio = trainer images/s over bare images/s (target >= 0.95).
"""

from __future__ import annotations

import copy
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
from trainer import batches, dataset, engine, model, tables  # noqa: E402

BATCH, STEPS, ROUNDS, IMAGE_SIZE = 4, 8, 5, 128
BACKBONE = {"faster_rcnn": "resnet18_fpn", "efficientdet": "tf_lite0"}


def bare_loop(module, family, loaded, lr):
    opt = torch.optim.SGD(module.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    module.train()
    for batch, _ in loaded:
        xb, yb = batches.to_device(batch, torch.device("cpu"), family)
        out = module(xb, yb)
        loss = out["loss"] if "loss" in out else sum(out.values())
        opt.zero_grad()
        loss.backward()
        opt.step()


def trainer_loop(detector, loaded, hp):
    opt = engine.optimizer(detector, hp)
    scheduler = engine.schedule(opt, len(loaded), 1)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    engine.train_one_epoch(
        detector,
        loaded,
        opt,
        scheduler,
        scaler,
        device=torch.device("cpu"),
        grad_clip_norm=hp.grad_clip_norm,
        stop=threading.Event(),
    )


def main() -> None:
    name = sys.argv[1] if len(sys.argv) > 1 else "efficientdet"
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        write_coco(Path(tmp), BATCH * STEPS)
        table = tables.load(Path(tmp))
        hp = from_values(
            {
                "model": name,
                "backbone": BACKBONE[name],
                "pretrained": False,
                "image_size": IMAGE_SIZE,
                "batch_size": BATCH,
                "learning_rate": 0.001,
            }
        )
        detector = model.create(hp, table.class_names)
        loader = batches.loader(
            dataset.build(table, IMAGE_SIZE, train=False), name, train=True, batch_size=BATCH
        )
        loaded = list(loader)
    initial = copy.deepcopy(detector.module.state_dict())
    module = detector.module  # one module object for both loops, reset before every round

    def timed(run) -> float:
        module.load_state_dict(initial)
        started = time.perf_counter()
        run()
        return time.perf_counter() - started

    def bare() -> None:
        bare_loop(module, name, loaded, hp.learning_rate)

    def ours() -> None:
        trainer_loop(detector, loaded, hp)

    timed(bare), timed(ours), timed(bare), timed(ours)  # warm-up: allocator, oneDNN kernels
    bare_times, trainer_times = [], []
    for _ in range(ROUNDS):
        bare_times.append(timed(bare))
        trainer_times.append(timed(ours))
    images = BATCH * STEPS
    bare_rate, our_rate = images / min(bare_times), images / min(trainer_times)
    ratio = our_rate / bare_rate
    print(f"{name}/{BACKBONE[name]}, {IMAGE_SIZE}px, batch {BATCH}, {STEPS} steps, CPU")
    print(f"best of {ROUNDS} alternating rounds after 2 warm-up rounds each")
    print(f"bare torchvision loop: {bare_rate:6.2f} images/s")
    print(f"trainer loop:          {our_rate:6.2f} images/s  ratio {ratio:.3f} (target >= 0.95)")


if __name__ == "__main__":
    main()

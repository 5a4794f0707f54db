"""Mixed precision: float16 with loss scaling, or bfloat16 without; a bfloat16 step on the CPU."""

import threading

import numpy as np
import pytest
import torch

from contract.hyperparameters import HyperparameterError, from_values
from tests.support.synthetic import write_coco
from trainer import accelerator, batches, dataset, engine, model, tables

CUDA, CPU = torch.device("cuda"), torch.device("cpu")


@pytest.mark.parametrize(
    ("values", "device", "dtype", "scaled"),
    [
        ({}, CUDA, torch.float16, True),  # the default: today's AMP
        ({"amp_dtype": "bfloat16"}, CUDA, torch.bfloat16, False),
        ({"amp": False, "amp_dtype": "bfloat16"}, CUDA, None, False),
        ({"amp_dtype": "bfloat16"}, CPU, None, False),  # fp32 on a CPU
    ],
)
def test_autocast_type_and_loss_scaling(values, device, dtype, scaled):
    chosen = accelerator.amp_dtype(from_values(values), device)
    assert chosen == dtype and accelerator.needs_loss_scaling(chosen) == scaled


def test_an_unknown_amp_dtype_is_refused():
    with pytest.raises(HyperparameterError, match=r"'amp_dtype' = 'int8'.*float16, bfloat16"):
        from_values({"amp_dtype": "int8"})


def test_a_bfloat16_autocast_epoch_runs_on_the_cpu(tmp_path):
    write_coco(tmp_path, 4)
    table = tables.load(tmp_path)
    hp = from_values(
        {"model": "efficientdet", "pretrained": False, "image_size": 128, "batch_size": 2}
    )
    detector = model.create(hp, table.class_names)
    loader = batches.loader(dataset.build(table, 128, train=True), "efficientdet", train=True,
                            batch_size=2)  # fmt: skip
    opt = engine.optimizer(detector, hp)
    seen = []
    hook = detector.module.model.class_net.register_forward_hook(
        lambda _m, _i, out: seen.append(out[0].dtype)
    )
    result = engine.train_one_epoch(
        detector,
        loader,
        opt,
        engine.schedule(opt, 2, 1),
        torch.amp.GradScaler("cpu", enabled=False),
        device=CPU,
        grad_clip_norm=10.0,
        stop=threading.Event(),
        amp_dtype=torch.bfloat16,
    )
    hook.remove()
    assert result.completed and result.steps == 2 and np.isfinite(result.loss)
    assert seen and set(seen) == {torch.bfloat16}

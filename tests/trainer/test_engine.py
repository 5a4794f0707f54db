import threading

import numpy as np
import pytest
import torch

from contract.hyperparameters import from_values
from tests.support.synthetic import write_coco
from trainer import batches, dataset, engine, model, tables


def test_epoch_sampler_is_seeded_resumable_and_split_by_rank():
    sampler = engine.EpochSampler(10, seed=3, batch_size=2)
    sampler.set_epoch(1)
    full = list(sampler)
    assert sorted(full) == list(range(10)) and full == list(sampler)
    sampler.set_epoch(1, skip_steps=2)
    assert list(sampler) == full[4:]
    sampler.set_epoch(2)
    assert list(sampler) != full
    ranks = [
        engine.EpochSampler(10, seed=3, batch_size=2, world=engine.World(r, 2)) for r in (0, 1)
    ]
    for r in ranks:
        r.set_epoch(1)
    assert sorted(set(ranks[0]) | set(ranks[1])) == list(range(10))
    assert sampler.steps() == 5 and ranks[1].steps() == 3 and len(ranks[1]) == 6


def test_epoch_sampler_fills_the_last_batch():
    sampler = engine.EpochSampler(5, seed=0, batch_size=4)
    indices = list(sampler)
    assert len(indices) == 8 and set(indices) == set(range(5))
    assert len(list(engine.EpochSampler(1, seed=0, batch_size=2))) == 2


def test_schedule_warms_up_then_decays_to_zero():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = engine.schedule(opt, steps_per_epoch=4, epochs=3)
    rates = []
    for _ in range(12):
        rates.append(scheduler.get_last_lr()[0])
        opt.step()
        scheduler.step()
    assert rates[0] < 0.001 and max(rates) == pytest.approx(0.1)
    assert scheduler.get_last_lr()[0] == pytest.approx(0.0, abs=1e-9)


def test_coco_map_is_one_for_perfect_predictions_and_zero_for_none():
    truth = [(np.array([[10, 10, 50, 60]], np.float32), np.array([1]))]
    perfect = [(truth[0][0], np.array([0.9], np.float32), np.array([1]))]
    assert engine.coco_map(truth, perfect, 2) == pytest.approx((1.0, 1.0))
    nothing = [(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, int))]
    assert engine.coco_map(truth, nothing, 2) == (0.0, 0.0)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("coco")
    write_coco(folder, 8)
    table = tables.load(folder)
    hp = from_values(
        {"model": "efficientdet", "pretrained": False, "image_size": 128, "batch_size": 2}
    )
    detector = model.create(hp, table.class_names)
    train_set = dataset.build(table, 128, train=True)
    loader = batches.loader(train_set, "efficientdet", train=True, batch_size=2)
    return hp, detector, loader


def test_stop_event_ends_the_epoch_early(tiny):
    hp, detector, batches = tiny
    opt = engine.optimizer(detector, hp)
    stop = threading.Event()
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    args = (detector, batches, opt, engine.schedule(opt, 4, 1), scaler)
    options = {"device": torch.device("cpu"), "grad_clip_norm": 1.0}
    done = engine.train_one_epoch(*args, stop=stop, **options)
    assert done.completed and done.steps == 4 and np.isfinite(done.loss)
    stop.set()
    stopped = engine.train_one_epoch(*args, stop=stop, first_step=2, running=(3.0, 2), **options)
    assert (stopped.completed, stopped.steps, stopped.loss) == (False, 2, 1.5)

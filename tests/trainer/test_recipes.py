"""Per-family recipes, their knobs, EMA, augmentation presets and learning_rate=auto."""

import json
import logging
from pathlib import Path

import pytest
import torch

from contract.hyperparameters import HyperparameterError, from_values, to_job_strings
from contract.recipes import RECIPES
from tests.support.opt_ml import TINY, run_main
from tests.support.synthetic import write_coco
from trainer import batches, dataset, engine, lr_finder, tables
from trainer import model as models


@pytest.mark.parametrize(
    ("model", "pretrained", "expected"),
    [
        ("faster_rcnn", True, ("sgd", 0.02 * 8 / 16, "cosine", 1e-4, False)),
        ("retinanet", True, ("sgd", 0.01 * 8 / 16, "cosine", 1e-4, False)),
        ("efficientdet", True, ("sgd", 0.09 * 8 / 64, "cosine", 4e-5, True)),
        ("faster_rcnn", False, ("adamw", 1e-3, "onecycle", 0.01, False)),
        ("retinanet", False, ("adamw", 1e-3, "onecycle", 0.01, False)),
        ("efficientdet", False, ("adamw", 3e-3, "onecycle", 0.01, False)),
    ],
)
def test_left_out_knobs_take_the_familys_recipe(model, pretrained, expected):
    hp = from_values({"model": model, "pretrained": pretrained, "batch_size": 8})

    assert (hp.optimizer, hp.learning_rate, hp.schedule, hp.weight_decay, hp.ema) == (
        expected[0],
        pytest.approx(expected[1]),
        expected[2],
        expected[3],
        expected[4],
    )
    assert hp.augmentation == "light"


def test_the_recipes_lr_scales_linearly_with_the_batch_and_a_given_value_wins():
    small = from_values({"model": "retinanet", "batch_size": 4})
    large = from_values({"model": "retinanet", "batch_size": 32})
    given = from_values({"model": "retinanet", "learning_rate": "0.003", "optimizer": "adamw"})

    assert large.learning_rate == pytest.approx(8 * small.learning_rate)
    assert (given.learning_rate, given.optimizer) == (0.003, "adamw")
    assert set(RECIPES) == {
        (m, p) for m in ("faster_rcnn", "retinanet", "efficientdet") for p in (True, False)
    }


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"optimizer": "adam"}, "'optimizer' = 'adam' is not supported; allowed: sgd, adamw"),
        ({"schedule": "step"}, "'schedule' = 'step' is not supported; allowed: onecycle, cosine"),
        ({"augmentation": "heavy"}, "'augmentation' = 'heavy' is not supported; allowed: light"),
        ({"ema": "maybe"}, "'ema' = 'maybe' must be true or false"),
        ({"ema_decay": "1.5"}, "'ema_decay' = 1.5 is out of range"),
        ({"learning_rate": "fast"}, "'learning_rate' = 'fast' must be a number or 'auto'"),
        ({"learning_rate": "0"}, "'learning_rate' = 0.0 is out of range"),
    ],
)
def test_each_knob_is_validated(values, message):
    with pytest.raises(HyperparameterError, match=message):
        from_values(values)


def test_auto_and_the_knobs_travel_in_the_raw_encoding():
    hp = from_values({"learning_rate": "AUTO", "ema": "true", "schedule": "onecycle"})

    strings = to_job_strings(hp)

    assert (strings["learning_rate"], strings["ema"], strings["schedule"]) == (
        "auto",
        "true",
        "onecycle",
    )


@pytest.mark.parametrize("augmentation", ["light", "standard", "none"])
def test_augmentation_presets_build_square_training_images(tmp_path, augmentation):
    write_coco(tmp_path / "c", 4)
    table = tables.load(tmp_path / "c")

    image = dataset.build(table, 128, train=True, augmentation=augmentation)[0].pixels

    assert image.shape[:2] == (128, 128)


def _tiny(tmp_path, *, images_seed: int = 0, **values):
    write_coco(tmp_path / "c", 8, seed=images_seed)
    table = tables.load(tmp_path / "c")
    hp = from_values({**TINY, "batch_size": 4, **values})
    detector = models.create(hp, table.class_names)
    loader = batches.loader(
        dataset.build(table, 128, train=True), detector.name, train=True, batch_size=4
    )
    return hp, detector, loader


def test_the_weight_average_follows_the_model_and_warms_up(tmp_path):
    hp, detector, loader = _tiny(tmp_path, ema="true")
    average = engine.WeightAverage(detector, hp.ema_decay)
    opt = engine.optimizer(detector, hp, 0.01)
    before = [p.detach().clone() for p in average.module.parameters()]

    engine.train_one_epoch(
        detector,
        loader,
        opt,
        engine.schedule(opt, 2, 1),
        torch.amp.GradScaler("cpu", enabled=False),
        device=torch.device("cpu"),
        grad_clip_norm=10.0,
        stop=__import__("threading").Event(),
        ema=average,
    )

    after = list(average.module.parameters())
    assert average.steps == 2
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    # with the warm-up the average is close to the trained weights, not stuck at the start
    trained = list(detector.module.parameters())
    assert all(torch.allclose(a, t, atol=1e-2) for a, t in zip(after, trained, strict=True))


def _range_test(detector, loader, opt, max_seconds: float = lr_finder.MAX_SECONDS):
    """30 steps of the range test on the CPU, as the trainer runs it."""
    return lr_finder.find(
        detector,
        loader,
        opt,
        device=torch.device("cpu"),
        amp_dtype=None,
        grad_clip_norm=10.0,
        max_steps=30,
        max_seconds=max_seconds,
    )


def test_range_test_picks_a_learning_rate_and_restores_the_model(tmp_path):
    hp, detector, loader = _tiny(tmp_path)
    opt = engine.optimizer(detector, hp, lr_finder.START)
    weights = {k: v.clone() for k, v in detector.module.state_dict().items()}

    found = _range_test(detector, loader, opt)
    picture = lr_finder.plot(found, tmp_path / "out")

    assert found.suggestion is not None and lr_finder.START < found.suggestion < lr_finder.END
    assert found.suggestion in found.learning_rates
    assert 10 < len(found.losses) <= 30
    assert all(torch.equal(v, detector.module.state_dict()[k]) for k, v in weights.items())
    assert opt.param_groups[0]["lr"] == lr_finder.START and not opt.state
    assert picture.read_bytes()[:4] == b"\x89PNG"


def test_the_range_test_stops_at_its_time_limit_and_keeps_the_recipe(tmp_path):
    hp, detector, loader = _tiny(tmp_path)

    found = _range_test(detector, loader, engine.optimizer(detector, hp, lr_finder.START), 0.0)

    assert len(found.losses) == 1  # the first step is over the limit: the test stops there
    assert found.suggestion is None  # too short to read: the caller keeps the recipe's rate


def _range_test_rank(rank: int, folder: Path, init_file: Path) -> None:
    """One rank of a two-process (gloo) range test."""
    import torch.distributed as dist

    from trainer import collectives

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        torch.manual_seed(0)  # the same initial weights on both ranks, as DDP starts
        # different images on each rank, as DDP shards them
        hp, detector, loader = _tiny(folder / f"rank{rank}", images_seed=rank)
        collectives.wrap(detector, torch.device("cpu"))
        found = _range_test(detector, loader, engine.optimizer(detector, hp, lr_finder.START))
        result = {"suggestion": found.suggestion, "losses": found.losses}
        (folder / f"rank{rank}.json").write_text(json.dumps(result))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_ranks_take_the_same_steps_and_agree_on_one_pick(tmp_path):
    torch.multiprocessing.spawn(
        _range_test_rank, args=(tmp_path, tmp_path / "rendezvous"), nprocs=2, join=True
    )

    first, second = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert first["suggestion"] is not None
    assert first["suggestion"] == second["suggestion"]
    # the loss is averaged across ranks: both read the same curve, from different data
    assert first["losses"] == second["losses"] and len(first["losses"]) > 10


def test_the_valley_rule_picks_inside_the_falling_stretch():
    rates = [10 ** (-6 + i * 0.1) for i in range(60)]
    losses = [5.0] * 15 + [5.0 - 0.2 * i for i in range(25)] + [0.0 + 0.5 * i for i in range(20)]

    pick = lr_finder.suggest(rates, losses)

    assert rates[15] < pick < rates[40]
    assert lr_finder.suggest(rates[:8], losses[:8]) is None  # too short to read


# A run with no learning_rate given takes its recipe's and learns: the session's finished job
# (test_finished_job.py::test_the_run_learns_with_the_recipes_learning_rate).


@pytest.mark.slow
def test_train_with_learning_rate_auto_logs_and_plots_its_pick(opt_ml, caplog):
    caplog.set_level(logging.INFO)
    write_coco(opt_ml.channel("training"), 12)
    opt_ml.declare_channels("training")
    opt_ml.hyperparameters({**TINY, "learning_rate": "auto", "ema": "true"})

    assert run_main(opt_ml) == 0, caplog.text[-3000:]

    assert "learning_rate=auto: " in caplog.text
    assert (opt_ml.output_data / lr_finder.PLOT_NAME).read_bytes()[:4] == b"\x89PNG"

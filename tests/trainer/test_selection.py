"""The best epoch and early stopping, as rules (the whole run is in test_main.py)."""

import math

import pytest
import torch

from trainer import selection


def _row(epoch: int, **values: float) -> dict[str, float]:
    return {"epoch": epoch, "valid_map": 0.0, "valid_loss": 1.0, **values}


def test_higher_map_is_better_and_ties_keep_the_earlier_epoch():
    best = selection.Selection("valid_map")

    improved = [best.update(_row(e, valid_map=m)) for e, m in enumerate([0.1, 0.3, 0.3, 0.2], 1)]

    assert improved == [True, True, False, False]
    assert (best.best_epoch, best.best_score, best.since_best) == (2, 0.3, 2)


def test_lower_loss_is_better_and_nan_never_wins():
    best = selection.Selection("valid_loss")

    for epoch, loss in enumerate([math.nan, 2.0, 1.5, math.nan, 1.7], 1):
        best.update(_row(epoch, valid_loss=loss))

    assert (best.best_epoch, best.best_score) == (3, 1.5)


def test_patience_stops_after_that_many_epochs_without_improvement():
    best = selection.Selection("valid_map", patience=2)
    stops = []
    for epoch, score in enumerate([0.1, 0.2, 0.2, 0.1], 1):
        best.update(_row(epoch, valid_map=score))
        stops.append(best.should_stop)

    assert stops == [False, False, False, True]
    assert best.stop_reason() == (
        "early stopping: valid_map has not improved for 2 epochs (early_stopping_patience=2); "
        "the best was 0.2 at epoch 2"
    )
    assert not selection.Selection("valid_map", patience=0).should_stop


def test_replay_and_best_weights_survive_a_restart(tmp_path):
    history = [_row(1, valid_map=0.2), _row(2, valid_map=0.4), _row(3, valid_map=0.1)]
    selection.save_best(tmp_path, 2, 0.4, {"w": torch.ones(2)})

    best = selection.replay("valid_map", 0, history)

    assert best.best_epoch == 2 and best.since_best == 1
    assert torch.equal(selection.load_best(tmp_path, best)["w"], torch.ones(2))
    assert best.summary(history)["metrics"] == history[1]


def test_best_weights_of_another_epoch_are_not_taken(tmp_path, caplog):
    selection.save_best(tmp_path, 3, 0.5, {"w": torch.ones(2)})  # written after the checkpoint
    best = selection.replay("valid_map", 0, [_row(1, valid_map=0.2), _row(2, valid_map=0.4)])

    assert selection.load_best(tmp_path, best) is None
    assert "holds epoch 3, not the best epoch 2" in caplog.text


@pytest.mark.parametrize("metric", ["lr", "epoch", "valid_mAP"])
def test_only_known_metrics_can_select(metric):
    from contract.hyperparameters import HyperparameterError, from_values

    with pytest.raises(HyperparameterError, match="allowed: valid_map, valid_map_50, valid_loss"):
        from_values({"select_metric": metric})

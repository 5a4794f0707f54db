"""The duration estimate's maths: a robust step time, decoding as the loaders run it."""

import logging

import pytest

from contract.outputs import MAX_RUNTIME_VARIABLE
from trainer import duration
from trainer.duration import Timing


def test_one_slow_step_does_not_move_the_typical_step():
    steady = [0.20, 0.21, 0.19, 0.20]

    assert duration.typical([*steady, 9.0]) == pytest.approx(0.20)
    assert duration.typical([*steady, 0.001]) == pytest.approx(0.20)
    assert duration.typical([0.2, 0.3, 30.0]) == pytest.approx(0.3)


def test_no_timings_is_an_error():
    with pytest.raises(ValueError, match="no timings"):
        duration.typical([])


@pytest.mark.parametrize(
    ("workers", "on_gpu", "expected"),
    [
        (0, True, 0.2 + 0.6),  # the main process decodes, then steps
        (0, False, 0.2 + 0.6),
        (4, True, 0.2),  # 4 workers decode 0.15 s a batch while the GPU steps 0.2 s
        (2, True, 0.3),  # 2 workers are the slower side
        (2, False, 0.2 + 0.3),  # on a CPU they take cores from the step
    ],
)
def test_loader_workers_decode_while_the_step_runs(workers, on_gpu, expected):
    assert duration.step_seconds(0.2, 0.6, workers=workers, on_gpu=on_gpu) == pytest.approx(
        expected
    )


def test_the_estimate_counts_training_validation_and_each_epochs_first_batches():
    train = Timing(steps=(0.2, 0.2, 5.0), decodes=(0.4, 0.4, 0.4))
    valid = Timing(steps=(0.1, 0.1, 0.1), decodes=(0.2, 0.2, 0.2))

    on_gpu = duration.estimate(
        train, valid, train_steps=50, valid_steps=10, epochs=3, workers=4, on_gpu=True
    )
    alone = duration.estimate(
        train, valid, train_steps=50, valid_steps=10, epochs=3, workers=0, on_gpu=True
    )

    assert (on_gpu.train_step, on_gpu.valid_step) == pytest.approx((0.2, 0.1))
    assert on_gpu.job == pytest.approx(3 * (50 * 0.2 + 10 * 0.1 + 0.4 + 0.2))
    assert (alone.train_step, alone.valid_step) == pytest.approx((0.6, 0.3))
    assert alone.job == pytest.approx(3 * (50 * 0.6 + 10 * 0.3))


@pytest.mark.parametrize(("job_steps", "timed"), [(0, 0), (9, 0), (30, 3), (270, 5), (10**6, 5)])
def test_timed_steps_are_a_tenth_of_the_job_at_most(job_steps, timed):
    assert duration.timed_steps(job_steps, most=5) == timed


@pytest.mark.parametrize(
    ("seconds", "text"), [(5.2, "5 s"), (119, "119 s"), (121, "3 min"), (7260, "2 h 01 min")]
)
def test_readable(seconds, text):
    assert duration.readable(seconds) == text


def test_max_runtime_is_read_from_the_contract_variable(monkeypatch, caplog):
    monkeypatch.delenv(MAX_RUNTIME_VARIABLE, raising=False)
    assert duration.max_runtime_seconds() is None
    monkeypatch.setenv(MAX_RUNTIME_VARIABLE, "3600")
    assert duration.max_runtime_seconds() == 3600
    monkeypatch.setenv(MAX_RUNTIME_VARIABLE, "an hour")
    with caplog.at_level(logging.WARNING):
        assert duration.max_runtime_seconds() is None
    assert f"ignoring {MAX_RUNTIME_VARIABLE} = 'an hour'" in caplog.text

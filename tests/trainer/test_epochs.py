"""The epoch loop's checkpoint state: a data error checkpoints where training stands."""

import functools

import pytest

from trainer import epochs
from trainer.checkpoints import CheckpointOnDataError
from trainer.errors import DataError


class RecordingCheckpointer:
    def __init__(self) -> None:
        self.saved: list[tuple] = []

    def save_before_failing(self, epoch, step, history, running=(0.0, 0)) -> None:
        self.saved.append((epoch, step, list(history), running))


def _failing_after(count: int):
    yield from range(count)
    raise DataError("image x.jpg cannot be decoded")


@pytest.mark.parametrize(
    ("validating", "expected"),
    [
        (False, (2, 5 + 3, [{"epoch": 2}], (0.0, 0))),  # resumed at step 5, 3 more batches done
        (True, (2, 5, [{"epoch": 2}], (4.5, 5))),  # training done: its steps and running loss
    ],
)
def test_a_data_error_checkpoints_the_progress_the_loop_recorded(validating, expected):
    checkpointer = RecordingCheckpointer()
    progress = epochs.Progress(epoch=0, history=[])
    on_error = functools.partial(epochs.save_before_failing, checkpointer, progress)
    batches = CheckpointOnDataError(_failing_after(3), on_error)
    # the loop moves on after the wrapper was made: the checkpoint sees the current state
    progress.epoch, progress.step, progress.running = 2, 5, (4.5, 5)
    progress.history.append({"epoch": 2})
    progress.validating = validating

    with pytest.raises(DataError):
        list(batches)

    assert checkpointer.saved == [expected]


def test_progress_resumes_from_a_checkpoints_state():
    state = {"epoch": 3, "step": 7, "running_loss": (2.0, 7), "history": [{"epoch": 3}]}
    assert epochs.Progress.resumed(state) == epochs.Progress(3, 7, (2.0, 7), [{"epoch": 3}])
    assert epochs.Progress.resumed({}) == epochs.Progress()

"""The failure rules: which exception gives which exit code and failure-file text."""

import pytest

from contract.sagemaker import EXIT_STOPPED
from trainer import errors


def _raised(error: Exception) -> Exception:
    try:
        raise error
    except Exception as caught:
        return caught


@pytest.mark.parametrize(
    ("error", "code", "text"),
    [
        (errors.ConfigError("epochs = 0"), errors.EXIT_USER_ERROR, "ConfigError: epochs = 0"),
        (errors.TrainingStopped("saved"), EXIT_STOPPED, "TrainingStopped: saved"),
        (errors.ClusterFailed("rank 3 failed: x", 137), 137, "rank 3 failed: x"),
    ],
)
def test_user_errors_stops_and_cluster_failures_get_their_message_alone(error, code, text):
    assert (errors.exit_code(error), errors.failure_text(error)) == (code, text)


def test_a_bug_exits_2_with_its_traceback():
    error = _raised(KeyError("model_state"))
    text = errors.failure_text(error)
    assert errors.exit_code(error) == errors.EXIT_BUG == 2
    assert text.startswith("KeyError: 'model_state'\n\nTraceback (most recent call last):")


def test_a_user_error_raised_in_a_dataloader_worker_keeps_the_original_message():
    # torch's DataLoader re-raises a worker's exception as the same type, traceback in the text.
    worker = (
        "Caught DataError in DataLoader worker process 0.\nOriginal Traceback (most recent "
        'call last):\n  File "data.py", line 9\ntrainer.errors.DataError: image a.jpg cannot '
        "be decoded\n"
    )
    error = errors.DataError(worker)
    assert errors.failure_text(error) == "DataError: image a.jpg cannot be decoded"
    assert errors.exit_code(error) == errors.EXIT_USER_ERROR

"""What can go wrong in a training run, and the rules that turn each kind into an exit.

A ``UserError`` is the job's input at fault (hyperparameters, channels, data):
the failure file gets its message alone, and the job exits 1. ``TrainingStopped``
is neither: SageMaker asked to stop (exit 143, the text alone). ``ClusterFailed``
carries another process's verdict (the first failure of a data-parallel job).
Anything else is a bug in the trainer: exit 2, the traceback in the failure file.
``failure_text`` and ``exit_code`` are those rules, used by the entry point and by
every data-parallel worker alike.
"""

from __future__ import annotations

import traceback

from contract.sagemaker import EXIT_STOPPED

EXIT_USER_ERROR = 1
EXIT_BUG = 2


class UserError(Exception):
    """The job's input is wrong; the message says what and what is allowed."""


class ConfigError(UserError):
    """A file under input/config, a channel, or a hyperparameter is not usable."""


class DataError(UserError):
    """The dataset in a channel is missing, unreadable or inconsistent."""


class TrainingStopped(Exception):
    """SIGTERM arrived (StopTrainingJob, MaxRuntime, spot interruption); a checkpoint was saved."""


class TrainingDiverged(UserError):
    """The loss became NaN or infinite: the learning rate is usually too high."""


class ClusterFailed(Exception):
    """A worker, a host or the rendezvous failed; ``text`` is the reason for the failure file."""

    def __init__(self, text: str, exit_code: int) -> None:
        super().__init__(text)
        self.text, self.exit_code = text, exit_code


def failure_text(error: BaseException) -> str:
    """The failure file's text: the message for a user's mistake or a stop, else the traceback."""
    if isinstance(error, ClusterFailed):
        return error.text
    summary = f"{type(error).__name__}: {error}"
    if isinstance(error, (UserError, TrainingStopped)):
        return _without_worker_traceback(summary)
    details = "".join(traceback.format_exception(error))
    return f"{summary}\n\n{details}"


def exit_code(error: BaseException) -> int:
    """1 for a user's mistake, 143 for a stop, 2 for a bug; a cluster failure keeps its own."""
    if isinstance(error, ClusterFailed):
        return error.exit_code
    if isinstance(error, TrainingStopped):
        return EXIT_STOPPED
    return EXIT_USER_ERROR if isinstance(error, UserError) else EXIT_BUG


def _without_worker_traceback(summary: str) -> str:
    """A DataLoader worker re-raises a UserError with its traceback in the message: keep the
    original message, the last line (``trainer.errors.DataError: image ... cannot be decoded``)."""
    if "\nOriginal Traceback" not in summary:
        return summary
    return summary.rstrip().splitlines()[-1].removeprefix("trainer.errors.")

"""What can go wrong in a training run, split the way the failure file needs it.

A ``UserError`` is the job's input at fault (hyperparameters, channels, data):
the failure file gets its message alone. Anything else is a bug in the trainer
and gets the traceback. ``TrainingStopped`` is neither: SageMaker asked to stop.
"""


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

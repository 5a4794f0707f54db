"""What the trainer and the launcher must agree on, in plain Python (stdlib only).

The trainer image uses this package directly; the launcher Lambda ships a copy
of it (lambdas/contract is a symlink the CDK asset follows), so both sides
validate hyperparameters and match metric lines with one definition.
"""

TRAINING_CHANNEL = "training"
VALIDATION_CHANNEL = "validation"
CHANNELS = (TRAINING_CHANNEL, VALIDATION_CHANNEL)

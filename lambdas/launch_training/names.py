"""Names shared by the launcher, the CDK constructs that configure it, and the operator CLI.

Defined once here (stdlib only) and imported by each side, so a renamed prefix or
environment variable cannot drift between what the stack sets and what the code reads.
"""

PROJECT = "detrain"
JOB_NAME_PREFIX = f"{PROJECT}-"

# The data bucket's layout.
DATASETS_PREFIX = "datasets/"  # datasets/<name>/... : uploaded by users
TRIGGER_FILENAME = "_launch.json"  # datasets/<name>/_launch.json : "upload complete, train"
TRIGGER_KEY_SUFFIX = f"/{TRIGGER_FILENAME}"  # the notification's suffix filter
MODELS_PREFIX = "models/"  # models/<job>/output/model.tar.gz : job output
CHECKPOINTS_PREFIX = "checkpoints/"  # checkpoints/<job>/ : synced from /opt/ml/checkpoints

# Tags put on every training job (and matched by the notification rule).
TAG_PROJECT = "project"
TAG_DATASET = "dataset"
TAG_TRIGGER = "trigger"


class Env:
    """Environment variables of the launcher function (set by infra/launcher.py)."""

    DATA_BUCKET = "DATA_BUCKET"
    TRAINING_IMAGE_URI = "TRAINING_IMAGE_URI"
    TRAINING_ROLE_ARN = "TRAINING_ROLE_ARN"
    ALLOWED_INSTANCE_TYPES = "ALLOWED_INSTANCE_TYPES"  # comma-separated
    DEFAULT_INSTANCE_TYPE = "DEFAULT_INSTANCE_TYPE"
    MAX_INSTANCE_COUNT = "MAX_INSTANCE_COUNT"
    MAX_RUNTIME_HOURS = "MAX_RUNTIME_HOURS"
    SPOT = "SPOT"  # one of SPOT_MODES
    OUTPUT_KMS_KEY_ARN = "OUTPUT_KMS_KEY_ARN"  # the platform key: encrypts the job's output
    NOTIFICATIONS_TOPIC_ARN = "NOTIFICATIONS_TOPIC_ARN"  # refusals of S3-triggered launches


# "required": every job runs on spot; "preferred": spot unless a request says
# spot=false; "off": on-demand only (a request for spot is refused).
SPOT_MODES = ("required", "preferred", "off")

# Resource names the stack gives and the rehearsal re-creates in the emulator.
REPOSITORY_NAME = f"{PROJECT}-training"
STACK_NAME = "Detrain"


def data_bucket_name(account: str, region: str) -> str:
    """The data bucket's name: globally unique per account and region."""
    return f"{PROJECT}-data-{account}-{region}"


class Output:
    """CloudFormation output keys of the stack: what the CLI and the README read."""

    BUCKET_NAME = "DataBucketName"
    REPOSITORY_URI = "RepositoryUri"
    IMAGE_URI = "TrainingImageUri"
    FUNCTION_NAME = "LauncherFunctionName"
    TOPIC_ARN = "NotificationsTopicArn"
    TRAINING_ROLE_ARN = "TrainingRoleArn"

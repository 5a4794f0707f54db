"""Names shared by the stack, the launcher, the operator CLI and the trainer.

Defined once here (stdlib only) and imported by each side, so a renamed prefix or
environment variable cannot drift between what the stack sets and what the code reads.
"""

from contract.sagemaker import JOB_NAME_MAX, JOB_NAME_PATTERN

PROJECT = "detrain"
JOB_NAME_PREFIX = f"{PROJECT}-"

# The data bucket's layout.
DATASETS_PREFIX = "datasets/"  # datasets/<name>/... : uploaded by users
TRIGGER_FILENAME = "_launch.json"  # datasets/<name>/_launch.json : "upload complete, train"
TRIGGER_KEY_SUFFIX = f"/{TRIGGER_FILENAME}"  # the notification's suffix filter
MODELS_PREFIX = "models/"  # models/<job>/output/model.tar.gz : job output
CHECKPOINTS_PREFIX = "checkpoints/"  # checkpoints/<job>/ : synced from /opt/ml/checkpoints
# models/<job>/transform/<transform job>/<image>.out : batch transform results (the model role
# may write only there).
TRANSFORM_FOLDER = "transform/"


def models_uri(bucket: str) -> str:
    """OutputDataConfig.S3OutputPath: SageMaker adds <job>/output/model.tar.gz."""
    return f"s3://{bucket}/{MODELS_PREFIX}"


def checkpoints_uri(bucket: str, job_name: str) -> str:
    """CheckpointConfig.S3Uri of a job: /opt/ml/checkpoints is synced here, and back on resume."""
    return f"s3://{bucket}/{CHECKPOINTS_PREFIX}{job_name}/"


def transform_output_uri(bucket: str, job_name: str, transform_job_name: str) -> str:
    """TransformOutput.S3OutputPath of a batch transform of a job's model."""
    return f"s3://{bucket}/{MODELS_PREFIX}{job_name}/{TRANSFORM_FOLDER}{transform_job_name}/"


# Tags put on every training job (and matched by the notification rule).
TAG_PROJECT = "project"
TAG_DATASET = "dataset"
TAG_TRIGGER = "trigger"
# Tags `detrain deploy` and `detrain transform` put on the models, endpoint configurations and
# endpoints they make: the training job, and the endpoint a resource was made for (undeploy
# deletes only what carries its endpoint's name).
TAG_JOB = "training-job"
TAG_ENDPOINT = "endpoint"


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
    MAX_TUNING_JOBS = "MAX_TUNING_JOBS"  # training jobs per tuning job
    MAX_PARALLEL_TUNING_JOBS = "MAX_PARALLEL_TUNING_JOBS"  # of them at once
    MAX_KEEP_ALIVE_MINUTES = "MAX_KEEP_ALIVE_MINUTES"  # a warm pool's wait; 0: no warm pools


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
    MODEL_ROLE_ARN = "ModelRoleArn"  # the execution role of models (endpoints, transforms)
    KMS_KEY_ARN = "PlatformKeyArn"  # encrypts the bucket and a job's output (OutputDataConfig)
    ENDPOINT_INSTANCE_TYPES = "EndpointInstanceTypes"  # comma-separated: the allow-list
    # The CPU serving image, built with the training image: `detrain deploy` serves serverless
    # endpoints with it (a stack deployed before it existed lacks it: then the training image).
    SERVERLESS_IMAGE_URI = "ServerlessImageUri"


# The trainer's local-run overrides of the rendezvous address (several hosts on one machine,
# where algo-1 does not resolve): set by detrain/local_runner.py, read by trainer/agent.py.
MASTER_ADDR_VARIABLE = "DETRAIN_MASTER_ADDR"
MASTER_PORT_VARIABLE = "DETRAIN_MASTER_PORT"


class JobNameError(ValueError):
    """A training job name breaks SageMaker's rule; the message says what is allowed."""


def check_job_name(name: str) -> str:
    """SageMaker's TrainingJobName rule: 1-63 characters, ``^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}``
    (letters, digits and hyphens, starting and ending with a letter or digit)."""
    if len(name) > JOB_NAME_MAX or not JOB_NAME_PATTERN.fullmatch(name):
        raise JobNameError(
            f"job name {name!r} is not allowed; allowed: 1-{JOB_NAME_MAX} letters, digits and "
            "hyphens, starting and ending with a letter or digit"
        )
    return name


def prefixed_job_name(name: str) -> str:
    """A requested job name with the project prefix (the launcher may create only those jobs),
    checked by SageMaker's rule; the JobNameError names the name as it was requested."""
    prefixed = name if name.startswith(JOB_NAME_PREFIX) else JOB_NAME_PREFIX + name
    try:
        return check_job_name(prefixed)
    except JobNameError:
        raise JobNameError(
            f"'job_name' = {name!r} is not a valid training job name; allowed: at most "
            f"{JOB_NAME_MAX} characters (with the {JOB_NAME_PREFIX!r} prefix), letters, "
            "digits and hyphens, starting and ending with a letter or digit"
        ) from None

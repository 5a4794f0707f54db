"""SageMaker's facts that the launcher, the local runner and the trainer all rely on.

Sources: CreateTrainingJob
(https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTrainingJob.html) and
the container contract
(https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-running-container.html).
Hyperparameter limits live beside the hyperparameters (contract/hyperparameters.py).
"""

import re

# Input modes: File copies a channel to the instance; FastFile streams it from S3 behind the
# same folder. Pipe needs SageMaker's FIFOs, which this trainer does not read: not offered.
FILE_MODE = "File"
FAST_FILE_MODE = "FastFile"
INPUT_MODES = (FILE_MODE, FAST_FILE_MODE)

# S3DataDistributionType: every instance gets the whole channel, or each ~1/N of its objects.
FULLY_REPLICATED = "FullyReplicated"
SHARDED_BY_S3_KEY = "ShardedByS3Key"
S3_DISTRIBUTIONS = (FULLY_REPLICATED, SHARDED_BY_S3_KEY)

# TrainingJobName: 1-63 characters matching ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}.
JOB_NAME_MAX = 63
JOB_NAME_PATTERN = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*")

# StoppingCondition.MaxRuntimeInSeconds: at most 28 days.
MAX_RUNTIME_HOURS = 28 * 24

# ResourceConfig.KeepAlivePeriodInSeconds: a warm pool waits at most 60 minutes for the next
# matching job, and cannot be used with managed spot training
# (https://docs.aws.amazon.com/sagemaker/latest/dg/train-warm-pools.html).
MAX_KEEP_ALIVE_MINUTES = 60

# SIGTERM on StopTrainingJob (and spot interruption); SIGKILL this many seconds later.
STOP_GRACE_SECONDS = 120
EXIT_STOPPED = 143  # 128 + SIGTERM: a process that stopped on request

# Where a job's container output goes: one CloudWatch stream per host, ``<job>/algo-N-<time>``
# (https://docs.aws.amazon.com/sagemaker/latest/dg/logging-cloudwatch.html).
TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"

# The first this-many characters of /opt/ml/output/failure become the job's FailureReason.
FAILURE_REASON_CHARS = 1024

# Training instance types are ml.<family>.<size> (families such as p6-b200 hold a hyphen).
# The stack checks each against botocore's TrainingInstanceType enum as well (infra/settings.py).
INSTANCE_TYPE_PATTERN = re.compile(r"ml\.[a-z0-9]+(-[a-z0-9]+)*\.[a-z0-9]+")

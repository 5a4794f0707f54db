"""The inference container's names: how SageMaker starts and talks to ``<image> serve``.

https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-inference-code.html and
https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-batch-code.html: SageMaker runs
``docker run <image> serve`` with the model unpacked in /opt/ml/model; the server listens on
8080 (or ``SAGEMAKER_BIND_TO_PORT``), answers ``GET /ping`` and ``POST /invocations`` (within
60 s), and, under batch transform (``SAGEMAKER_BATCH=true``), ``GET /execution-parameters``.
The server (training_image/serving/), ``detrain serve`` and the tests read these names here.
"""

SERVE_COMMAND = "serve"  # docker run <image> serve: argv[1] of the entry point

DEFAULT_PORT = 8080
PORT_VARIABLE = "SAGEMAKER_BIND_TO_PORT"  # multi-container endpoints and inference pipelines
BATCH_VARIABLE = "SAGEMAKER_BATCH"  # "true" in a batch transform job
# Where the server binds: all interfaces in a container; `detrain serve` sets loopback.
HOST_VARIABLE = "DETRAIN_SERVE_HOST"
DEFAULT_HOST = "0.0.0.0"  # in a container: the port SageMaker reaches
# How many requests run the model at once; the default comes from the host (docs/serving.md).
WORKERS_VARIABLE = "SAGEMAKER_MODEL_SERVER_WORKERS"

PING_PATH = "/ping"
INVOCATIONS_PATH = "/invocations"
EXECUTION_PARAMETERS_PATH = "/execution-parameters"
CUSTOM_ATTRIBUTES_HEADER = "X-Amzn-SageMaker-Custom-Attributes"

# What /invocations reads. A JSON body is {"image": "<base64 of the file>", ...options}.
IMAGE_CONTENT_TYPES = ("image/jpeg", "image/png", "application/x-image")
JSON_CONTENT_TYPE = "application/json"
# What a batch transform sends each S3 object as (SplitType None: one object, one request):
# the type the server reads whatever the image format is (it sniffs the bytes).
TRANSFORM_CONTENT_TYPE = "application/x-image"

# Limits: a request over them gets 413. SageMaker caps a real-time payload at 6 MB (serverless
# at 4 MB), a batch transform record at MaxPayloadInMB (at most 100).
MAX_PAYLOAD_MB = 20
MAX_IMAGE_PIXELS = 50_000_000  # width x height after decoding the header
INVOCATION_SECONDS = 60  # SageMaker's limit for one /invocations answer
# How long a request may wait for a turn at the model before it gets 503 (SageMaker would cut
# it at INVOCATION_SECONDS anyway): the rest of the 60 s is left for running the model.
QUEUE_SECONDS_VARIABLE = "DETRAIN_MAX_QUEUE_SECONDS"
DEFAULT_QUEUE_SECONDS = 45

# Per-request options: query string, JSON fields or CustomAttributes ("threshold=0.3,...").
THRESHOLD_OPTION = "threshold"
MAX_DETECTIONS_OPTION = "max_detections"
DEFAULT_THRESHOLD = 0.5
DEFAULT_MAX_DETECTIONS = 100

"""What a finished job leaves, by name: the archives SageMaker uploads and the files in them.

SageMaker tars ``/opt/ml/model`` into ``<S3OutputPath>/<job>/output/model.tar.gz`` and
``/opt/ml/output/data`` into ``output.tar.gz`` beside it
(https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-output.html).
The trainer writes these files, the local runner packs them the same way, and the CLI reads
them back: each name is defined here once.
"""

import importlib.util
from pathlib import Path
from types import ModuleType

MODEL_ARCHIVE = "model.tar.gz"  # /opt/ml/model, packed
OUTPUT_ARCHIVE = "output.tar.gz"  # /opt/ml/output/data, packed

# /opt/ml/model: the model artifact.
MODEL_WEIGHTS_FILE = "model.pt"  # the state dict
MODEL_CLASS_MAP_FILE = "class_map.json"
MODEL_LOADER_FILE = "detector.py"  # a loader that needs none of this repository
MODEL_CONFIG_FILE = "config.json"  # written last: a folder without it is not a finished model

# /opt/ml/output/data: what people read.
REPORT_FILE = "report.html"
METRICS_JSON_FILE = "metrics.json"
METRICS_CSV_FILE = "metrics.csv"
METRICS_PLOT_FILE = "metrics.png"

# Set by the launcher on every job, read by the trainer's preflight (its duration warning).
MAX_RUNTIME_VARIABLE = "DETRAIN_MAX_RUNTIME_SECONDS"


def job_output_key(models_prefix: str, job_name: str, archive: str) -> str:
    """The S3 key SageMaker gives a job's archive: ``<prefix><job>/output/<archive>``.

    ``models_prefix`` is the key part of S3OutputPath, ending in ``/`` (or empty).
    """
    if archive not in (MODEL_ARCHIVE, OUTPUT_ARCHIVE):
        raise ValueError(f"archive {archive!r}: allowed {MODEL_ARCHIVE!r}, {OUTPUT_ARCHIVE!r}")
    return f"{models_prefix}{job_name}/output/{archive}"


def load_detector_module(model_dir: Path) -> ModuleType:
    """The model folder's own detector.py, imported under a name of its own (per folder), as
    anyone holding the artifact would: ``detrain predict`` and the model server both use it."""
    folder = Path(model_dir)
    spec = importlib.util.spec_from_file_location(
        f"detrain_model_{abs(hash(str(folder.resolve())))}", folder / MODEL_LOADER_FILE
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

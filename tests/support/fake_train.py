"""A stand-in for ``training_image/train train`` that records what the runner gave it.

It reads /opt/ml (SAGEMAKER_BASE_DIR) and acts on the hyperparameter ``behaviour``:
``complete`` (default) writes a model, metrics, a plot and a checkpoint and exits 0;
``fail`` writes a long failure file and exits 3; ``wait`` runs until SIGTERM, then
checkpoints and exits 0; ``ignore`` ignores SIGTERM. A tuning trial (SageMaker's
``_tuning_objective_metric`` among its hyperparameters) scores a last valid_map that peaks at a
learning rate of 1e-3, and writes a report.html.
"""

import json
import math
import os
import signal
import sys
import time
from pathlib import Path

base = Path(os.environ["SAGEMAKER_BASE_DIR"])
config = base / "input" / "config"
hyperparameters = json.loads((config / "hyperparameters.json").read_text())
checkpoint_config = config / "checkpointconfig.json"
local_path = (
    json.loads(checkpoint_config.read_text())["LocalPath"]
    if checkpoint_config.exists()
    else "/opt/ml/checkpoints"
)
checkpoints = base / Path(local_path).relative_to("/opt/ml")  # as the real trainer maps it
record = {
    "argv": sys.argv[1:],
    "job": os.environ.get("TRAINING_JOB_NAME"),
    "channels": {
        p.name: sorted(str(f.relative_to(p)) for f in p.rglob("*") if f.is_file())
        for p in sorted((base / "input" / "data").iterdir())
    },
    "checkpoints_at_start": sorted(f.name for f in checkpoints.glob("*")),
    "host": json.loads((config / "resourceconfig.json").read_text())["current_host"],
    "master": [os.environ.get("DETRAIN_MASTER_ADDR"), os.environ.get("DETRAIN_MASTER_PORT")],
    "signals": [],
}
records = base / "fake-record.json"


def save():
    records.write_text(json.dumps(record))


def on_term(signum, _frame):
    record["signals"].append(signal.Signals(signum).name)
    save()
    if behaviour == "wait":
        (checkpoints / "epoch-0.pt").unlink()
        (checkpoints / "last.pt").write_text("stopped")
        (base / "model" / "weights.pt").write_text("partial")
        sys.exit(0)


behaviour = hyperparameters.get("behaviour", "complete")
signal.signal(signal.SIGTERM, signal.SIG_IGN if behaviour == "ignore" else on_term)
save()
print("fake trainer started", flush=True)
METRICS = "valid_loss={} valid_map={} valid_map_50={} lr=0.01 epoch_seconds=0.5"
print("[metrics] epoch=1 train_loss=1.5 " + METRICS.format(1.25, 0.125, 0.25), flush=True)
if behaviour == "fail":
    (base / "output" / "failure").write_text("DatasetError: " + "x" * 2000)
    sys.exit(3)
if behaviour in ("wait", "ignore"):
    (checkpoints / "epoch-0.pt").write_text("while running")
    (base / "ready").write_text("ready")
    while True:
        time.sleep(0.05)
checkpoints.mkdir(parents=True, exist_ok=True)  # a tuning trial has no CheckpointConfig
(checkpoints / "epoch-1.pt").write_text("checkpoint")
(base / "model" / "weights.pt").write_text("weights")
(base / "model" / "sub").mkdir()
(base / "model" / "sub" / "classes.json").write_text("[]")
(base / "output" / "data" / "metrics.csv").write_text("epoch,train_loss\n1,1.5\n")
(base / "output" / "data" / "training.png").write_bytes(b"\x89PNG")
final_map = 0.25
if "_tuning_objective_metric" in hyperparameters:
    final_map = round(1 - abs(math.log10(float(hyperparameters["learning_rate"])) + 3) / 3, 6)
    page = "<!DOCTYPE html><html><head></head><body><h1>fake report</h1></body></html>"
    (base / "output" / "data" / "report.html").write_text(page)
print("[metrics] epoch=2 train_loss=0.75 " + METRICS.format(0.5, final_map, 0.5), flush=True)

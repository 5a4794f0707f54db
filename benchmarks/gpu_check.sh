#!/usr/bin/env bash
# GPU check, run on a lent GPU machine (see docs/performance.md, "GPU check"):
#   1. the trainer's whole entry (`train train`) on CUDA with AMP, for Faster R-CNN and EfficientDet;
#   2. the DDP path with one process per GPU (NCCL);
#   3. resume after SIGTERM on the GPU;
#   4. first, the CUDA forward-compatibility start-up on this machine's real driver file (the
#      decision for the image's compat packages, and `train` starting through it);
#   5. every model x backbone through the preflight on CUDA, 1 and 20 classes (the self-check's
#      matrix, trainer/self_check_matrix.py, on the GPU);
#   6. throughput: benchmarks/bench_gpu_train.py's table (THROUGHPUT=0 skips it).
# Packages the GPU machine lacks (it has torch, torchvision, timm, numpy, OpenCV, matplotlib) travel
# as wheels in .whl/, fetched for its Python (3.12 here) with:
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux2014_x86_64 -d .whl icevision==0.12.0 fastcore==2.2.41 \
#     albumentations==1.3.1 qudida effdet==0.4.1 omegaconf==2.4.0 loguru==0.7.3 pycocotools==2.0.11 \
#     faster-coco-eval==1.8.0
# Writes its log and each run's metrics under $OUT (or ./gpu-check-out).
set -uo pipefail
OUT=${OUT:-$PWD/gpu-check-out}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 - <<'PY'
import torch, torchvision
print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), torchvision {torchvision.__version__}, "
      f"{torch.cuda.device_count()} GPU(s): {torch.cuda.get_device_name(0)}")
PY

WORK=$(mktemp -d)
python3 - "$WORK/data" <<'PY'
import sys
from pathlib import Path
from tests.support.synthetic import write_coco  # run from the repository root
write_coco(Path(sys.argv[1]), count=96, seed=1, size=(320, 256))
PY

status=0
layout() {  # layout NAME HYPERPARAMETERS_JSON -> a SageMaker-style /opt/ml tree at $WORK/NAME
  local base="$WORK/$1"
  mkdir -p "$base/input/config" "$base/input/data"
  cp -r "$WORK/data" "$base/input/data/training"
  echo "$2" > "$base/input/config/hyperparameters.json"
  echo '{"training": {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated"}}' \
    > "$base/input/config/inputdataconfig.json"
  echo '{"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"}' \
    > "$base/input/config/resourceconfig.json"
}
run() {  # run NAME HYPERPARAMETERS_JSON [ENV...]
  local name=$1 base="$WORK/$1"
  layout "$1" "$2"; shift 2
  echo "== $name"
  local started=$SECONDS
  env SAGEMAKER_BASE_DIR="$base" TRAINING_JOB_NAME="gpu-$name" "$@" \
    python3 training_image/train train > "$OUT/$name.log" 2>&1
  local code=$?
  grep -E "CUDA forward|device|data-parallel|effective batch|\[metrics\]|Training complete|failed" "$OUT/$name.log" | tail -n 12
  echo "exit $code in $((SECONDS - started)) s; model files: $(ls "$base/model" 2>/dev/null | tr '\n' ' ')"
  [ -f "$base/output/failure" ] && { echo "failure:"; head -c 1024 "$base/output/failure"; echo; }
  [ $code -eq 0 ] || status=1
}

echo "== cuda forward compatibility start-up (the real driver file)"
python3 - "$WORK/compat" <<'PY' || status=1
import os
import sys
from pathlib import Path
sys.path.insert(0, "training_image")
from trainer import forward_compat as fc
text = fc.read_driver_text(os.environ)
assert text, "no NVIDIA driver file"
print(text.splitlines()[0])
host = fc.driver_version(text)
assert host, "no driver version parsed from the real driver file"
# this machine's own compat folder (none unless it is the image), then the image's two packages
for compat in (fc.compat_version(fc.COMPAT_DIR), "560.35.05", "580.95.05"):
    print(fc.decide(text, compat).describe())
folder = Path(sys.argv[1])  # a stand-in for cuda-compat-12-6 (file names only; nothing loads them)
folder.mkdir(parents=True)
(folder / "libcuda.so.560.35.05").touch()
PY
layout startup '{}'
env SAGEMAKER_BASE_DIR="$WORK/startup" DETRAIN_CUDA_COMPAT_DIR="$WORK/compat" \
  python3 training_image/train train --epochs > "$OUT/startup.log" 2>&1
code=$?
grep -E "CUDA forward compatibility|unexpected arguments" "$OUT/startup.log" | head -n 3
# on a driver >= 560 the stand-in stays off (native) and the trainer starts (exit 1: the bad argument)
grep -q "CUDA forward compatibility: host driver" "$OUT/startup.log" && [ $code -eq 1 ] || status=1
echo "start-up: exit $code (1 expected)"

FRCNN='{"model": "faster_rcnn", "backbone": "resnet18_fpn", "pretrained": "false", "epochs": "3", "batch_size": "16", "image_size": "256", "num_workers": "4", "amp": "true"}'
EDET='{"model": "efficientdet", "backbone": "tf_lite0", "pretrained": "false", "epochs": "3", "batch_size": "16", "image_size": "256", "num_workers": "4", "amp": "true"}'
run faster_rcnn_amp "$FRCNN"
run efficientdet_amp "$EDET"
run faster_rcnn_fp32 "${FRCNN/\"amp\": \"true\"/\"amp\": \"false\"}"
run efficientdet_ddp "$EDET" DETRAIN_DISTRIBUTED=1 DETRAIN_MASTER_ADDR=127.0.0.1
run faster_rcnn_ddp "$FRCNN" DETRAIN_DISTRIBUTED=1 DETRAIN_MASTER_ADDR=127.0.0.1

# SIGTERM during epoch 2 (as StopTrainingJob or a spot interruption would), then resume from the checkpoint (same tree).
LONG='{"model": "faster_rcnn", "backbone": "resnet18_fpn", "pretrained": "false", "epochs": "4", "batch_size": "8", "image_size": "256", "num_workers": "2", "amp": "true"}'
layout sigterm "$LONG"
base="$WORK/sigterm"
echo "== sigterm_resume"
SAGEMAKER_BASE_DIR="$base" python3 training_image/train train > "$OUT/sigterm.log" 2>&1 &
pid=$!
for _ in $(seq 1 120); do grep -q "epoch=1 " "$OUT/sigterm.log" && break; sleep 1; done
kill -TERM $pid; wait $pid; echo "after SIGTERM: exit $? (143 expected); checkpoints: $(ls "$base/checkpoints" 2>/dev/null | tr '\n' ' ')"
rm -f "$base/output/failure"
SAGEMAKER_BASE_DIR="$base" python3 training_image/train train > "$OUT/resume.log" 2>&1
code=$?
grep -E "resum|\[metrics\]" "$OUT/resume.log" | tail -n 4
echo "resume: exit $code; model files: $(ls "$base/model" 2>/dev/null | tr '\n' ' ')"
[ $code -eq 0 ] || status=1

echo "== every model x backbone preflights on the GPU (1 and 20 classes)"
python3 - "$WORK/matrix" <<'PY' || status=1
import sys
from pathlib import Path
import torch
sys.path.insert(0, "training_image")
from contract.families import FAMILIES
from trainer import self_check_matrix
for name in FAMILIES:
    workdir = Path(sys.argv[1]) / name
    print(name, self_check_matrix.every_backbone(name, workdir, torch.device("cuda")), flush=True)
PY

# Throughput (issue 14): the whole table, then channels_last at the precisions that matter.
# About 5 minutes on an H200; its smoke run (`--smoke`, on the CPU) is what CI-sized checks use.
if [ "${THROUGHPUT:-1}" = 1 ]; then
  echo "== bench_gpu_train"
  python3 benchmarks/bench_gpu_train.py 2>&1 | grep -v Warning | tee "$OUT/bench_gpu_train.txt"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  python3 benchmarks/bench_gpu_train.py --channels-last --precisions fp32,bf16 --workers 4 \
    2>&1 | grep -v Warning | tee "$OUT/bench_gpu_train_channels_last.txt"
  echo "== bench_gpu_train: decode on the GPU (nvjpeg), 4 and all workers"
  python3 benchmarks/bench_gpu_train.py --decode-on device --precisions bf16 --workers 4,all \
    2>&1 | grep -v Warning | tee "$OUT/bench_gpu_train_decode_on_device.txt"
  echo "== bench_gpu_train: the whole process on 4 cores (ml.g5.xlarge), CPU vs GPU decode"
  for where in cpu device; do
    taskset -c 0-3 python3 benchmarks/bench_gpu_train.py --decode-on "$where" --precisions bf16 \
      --workers 4 2>&1 | grep -v Warning | tee "$OUT/bench_gpu_train_4cores_$where.txt"
  done
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  python3 benchmarks/bench_coco_eval.py | tee "$OUT/bench_coco_eval.txt"
fi
echo "GPU check status: $status"
exit $status

#!/usr/bin/env bash
# The GPU checks in one go, on a machine with an NVIDIA GPU, after ./setup.sh (which installs onnxruntime-gpu
# and the CUDA/cuDNN wheels when nvidia-smi finds a GPU): builds the fp16 pack if missing, then runs
# bench/gpu_check.py (provider really CUDA, IO binding, fp16 vs fp32 transcripts, file RTF, ms per decode
# step) and keeps its output in bench/results/. Extra arguments go to gpu_check.py (e.g. --clips 5).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
nvidia-smi || echo "nvidia-smi failed: no usable NVIDIA driver; the checks will say what runs where"
for p in fp32 fp16; do
  if [ ! -e "$($PY -c "from engine.packs.paths import pack_dir; print(pack_dir('whisper-base', '$p'))")/encoder_model.onnx" ]; then
    .venv/bin/parley models build whisper-base --precision "$p"
  fi
done
mkdir -p bench/results
stamp=$(date +%Y%m%d-%H%M%S)
$PY bench/gpu_check.py --out "bench/results/gpu_check-$stamp.json" "$@" 2>&1 | tee "bench/results/gpu_check-$stamp.txt"
exit "${PIPESTATUS[0]}"

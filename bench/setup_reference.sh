#!/usr/bin/env bash
# The reference tools live in their own environment (.refvenv/): faster-whisper depends on plain
# onnxruntime, which would break onnxruntime-gpu in .venv/.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .refvenv/bin/python ] || python3 -m venv .refvenv
.refvenv/bin/python -m pip install -q --disable-pip-version-check "faster-whisper==1.2.1" numpy
echo "reference environment ready: .refvenv (faster-whisper $(.refvenv/bin/python -c 'import faster_whisper; print(faster_whisper.__version__)'))"

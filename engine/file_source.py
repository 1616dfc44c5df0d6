"""An audio file as a live source: the same ``start / read / stop / drain`` a Capture offers.

``realtime=True`` releases the file's audio at the pace of the wall clock (``speed`` × real time), as
a microphone would deliver it: ``parley live --input talk.wav --realtime`` and the latency benchmark
run the live pipeline exactly as it runs on a device. ``realtime=False`` hands out ``block_s`` of audio
per read as fast as the reader asks (soak tests, fast-forwarded streams).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from engine.audio import iter_audio
from engine.events import Level
from engine.features import SAMPLE_RATE

log = logging.getLogger(__name__)


def _level(x: np.ndarray) -> Level:
    if not x.size:
        return Level(float("-inf"), 0.0)
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    return Level(20 * np.log10(rms) if rms > 0 else float("-inf"), min(float(np.max(np.abs(x))), 1.0))


class FileSource:
    """Reads 16 kHz mono chunks from a file (decoded incrementally; a long file is never held whole)."""

    dropped_blocks = 0  # a file never drops audio

    def __init__(self, path: str | Path | None = None, realtime: bool = True, speed: float = 1.0,
                 block_s: float = 0.5, audio: np.ndarray | None = None, name: str | None = None):
        if (path is None) == (audio is None):
            raise ValueError("give a path or an array of 16 kHz samples, not both")
        if speed <= 0 or block_s <= 0:
            raise ValueError("speed and block_s must be positive")
        self.path = Path(path) if path is not None else None
        self.realtime = realtime
        self.speed = speed
        self.block_s = block_s
        self.name = name or (self.path.name if self.path else "samples")
        self._array = None if audio is None else np.asarray(audio, np.float32)
        self._chunks = None
        self._pending = np.zeros(0, np.float32)
        self._delivered = 0  # samples handed out
        self._started_at: float | None = None
        self._stopped_at: float | None = None
        self.exhausted = False  # True once every sample of the file has been read
        self.last_level = Level(float("-inf"), 0.0)

    # --- lifecycle -----------------------------------------------------------------------------------
    def start(self) -> None:
        if self._array is not None:
            self._chunks = iter([self._array])
        else:
            self._chunks = iter_audio(self.path, chunk_s=10.0)  # raises AudioFileError for a bad path now
        self._started_at = time.monotonic()
        self._stopped_at = None
        log.info("reading %s (%s)", self.name, f"{self.speed:g}x real time" if self.realtime else "fast-forward")

    def stop(self) -> None:
        if self._stopped_at is None:
            self._stopped_at = time.monotonic()

    close = stop

    @property
    def started_at(self) -> float | None:
        return self._started_at

    @property
    def position_s(self) -> float:
        return self._delivered / SAMPLE_RATE

    # --- reading -------------------------------------------------------------------------------------
    def _due(self) -> int:
        """Samples of the file that the wall clock has reached (realtime) — everything else."""
        if not self.realtime:
            return self._delivered + max(1, round(self.block_s * SAMPLE_RATE))
        now = self._stopped_at if self._stopped_at is not None else time.monotonic()
        return int((now - self._started_at) * self.speed * SAMPLE_RATE)

    def _take(self, n: int) -> np.ndarray:
        while self._pending.size < n and self._chunks is not None:
            try:
                self._pending = np.concatenate([self._pending, next(self._chunks)])
            except StopIteration:
                self._chunks = None
        out, self._pending = self._pending[:n], self._pending[n:]
        self._delivered += out.size
        if self._chunks is None and not self._pending.size:
            self.exhausted = True
        if out.size:
            self.last_level = _level(out)
        return out

    def read(self, timeout: float | None = 0.5) -> np.ndarray:
        """The audio due since the last read (waits up to ``timeout`` s for some in realtime mode)."""
        if self._started_at is None:
            raise RuntimeError("FileSource.read() before start()")
        if self.exhausted or (self._stopped_at is not None and not self.realtime):
            return np.zeros(0, np.float32)
        due = self._due()
        if self.realtime and due <= self._delivered and self._stopped_at is None and timeout:
            wait_s = (self._delivered + 1 - due) / (self.speed * SAMPLE_RATE)
            time.sleep(min(timeout, max(wait_s, 0.01)))
            due = self._due()
        return self._take(max(0, due - self._delivered))

    def drain(self) -> np.ndarray:
        """After ``stop``: the audio the clock had reached but nobody had read yet."""
        return self.read(0) if self.realtime else np.zeros(0, np.float32)

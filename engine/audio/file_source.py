"""An audio file as a live source: the same ``start / read / stop / drain`` a Capture offers.

``realtime=True`` releases the file's audio at the pace of the wall clock (``speed`` × real time), as
a microphone would deliver it: ``parley live --input talk.wav --realtime`` and the latency benchmark
run the live pipeline exactly as it runs on a device. The audio the clock has reached goes through the
same bounded :class:`~engine.audio.capture.AudioRing` a capture's callback fills, in the capture's 50 ms
blocks, so a reader that falls too far behind loses the oldest audio and ``dropped_blocks`` counts it,
as it does live. ``realtime=False`` hands out ``block_s`` of audio per read as fast as the reader asks
(fast-forwarded streams: there is no clock to fall behind, so nothing is ever dropped).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from engine.audio.decode import iter_audio
from engine.audio.capture import AudioRing
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

    def __init__(self, path: str | Path | None = None, realtime: bool = True, speed: float = 1.0,
                 block_s: float = 0.5, audio: np.ndarray | None = None, name: str | None = None,
                 ring: AudioRing | None = None, ring_block_s: float = 0.05):
        if (path is None) == (audio is None):
            raise ValueError("give a path or an array of 16 kHz samples, not both")
        if speed <= 0 or block_s <= 0 or ring_block_s <= 0:
            raise ValueError("speed, block_s and ring_block_s must be positive")
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
        self.ring = ring if ring is not None else AudioRing()  # (realtime) as a capture's: bounded, counts drops
        self._ring_block = max(1, round(ring_block_s * SAMPLE_RATE))

    @property
    def dropped_blocks(self) -> int:
        """Blocks the ring dropped because the reader fell behind the clock (always 0 when fast-forwarded)."""
        return self.ring.dropped_blocks

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
        if not self.realtime:
            return self._take(max(0, due - self._delivered))
        if due - self._delivered < self._ring_block and self._stopped_at is None and timeout:
            wait_s = (self._delivered + self._ring_block - due) / (self.speed * SAMPLE_RATE)
            time.sleep(min(timeout, max(wait_s, 0.01)))
            due = self._due()
        self._fill_ring(due)
        blocks = self.ring.get_all(0)
        return np.concatenate(blocks) if blocks else np.zeros(0, np.float32)

    def _fill_ring(self, due: int) -> None:
        """Put the blocks the clock has reached into the ring, as a capture callback would have, one by one
        (when the reader was late, the ring keeps the newest and counts what it dropped). After ``stop``
        the last partial block goes in too."""
        whole = (due - self._delivered) // self._ring_block * self._ring_block
        if self._stopped_at is not None:
            whole = max(0, due - self._delivered)
        if whole <= 0:
            return
        audio = self._take(whole)
        for i in range(0, audio.size, self._ring_block):
            self.ring.put(audio[i:i + self._ring_block])

    def drain(self) -> np.ndarray:
        """After ``stop``: the audio the clock had reached but nobody had read yet."""
        return self.read(0) if self.realtime else np.zeros(0, np.float32)

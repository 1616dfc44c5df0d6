"""A sound device for tests and benches: ``FakeInputStream`` stands where sounddevice's InputStream does in
``Capture(stream_factory=...)`` and replays a clip through the capture's own callback path."""

from __future__ import annotations

import threading
import time
from typing import Callable

import numpy as np

from engine.audio.decode import resample


class FakeInputStream:
    """Replays a clip through a Capture's callback from a thread of its own, as PortAudio would.

    ``supported_rates`` are the rates it opens at (others raise like PortAudio); ``fail_at_s`` ends the
    stream there as an unplugged device does; ``speed`` paces blocks (1.0 = real time, None = at once).
    """

    def __init__(self, clip: np.ndarray, clip_rate: int, *, device=None, samplerate: int, channels: int,
                 dtype: str = "float32", blocksize: int, callback, finished_callback=None,
                 supported_rates: tuple[int, ...] | None = None, fail_at_s: float | None = None,
                 speed: float | None = None):
        if samplerate not in (supported_rates or (clip_rate,)):
            raise ValueError(f"Invalid sample rate {samplerate} [PaErrorCode -9997]")
        clip = np.asarray(clip, np.float32)
        clip = clip[:, None] if clip.ndim == 1 else clip
        if samplerate != clip_rate:
            clip = np.stack([resample(c, clip_rate, samplerate) for c in clip.T], axis=1)
        self._clip = np.repeat(clip[:, :1], channels, axis=1) if clip.shape[1] != channels else clip
        self.samplerate, self.channels, self.blocksize = samplerate, channels, blocksize
        self._callback, self._finished_callback = callback, finished_callback
        self._fail_frame = None if fail_at_s is None else int(fail_at_s * samplerate)
        self._speed = speed
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.active = False

    @classmethod
    def factory(cls, clip: np.ndarray, clip_rate: int, **options) -> Callable[..., "FakeInputStream"]:
        return lambda **kwargs: cls(clip, clip_rate, **kwargs, **options)

    def start(self) -> None:
        self.active = True
        self._thread = threading.Thread(target=self._run, name="fake-audio", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        end = len(self._clip) if self._fail_frame is None else min(self._fail_frame, len(self._clip))
        # Paced against one clock, as a sound card is: waiting a block's length after each callback
        # would add the callback's time and every oversleep, and a busy machine drifts seconds behind.
        t0 = time.monotonic()
        for pos in range(0, end, self.blocksize):
            if self._stop.is_set():
                return
            self._callback(self._clip[pos:min(pos + self.blocksize, end)], self.blocksize, None, 0)
            if self._speed:
                due = t0 + (pos + self.blocksize) / self.samplerate / self._speed
                self._stop.wait(max(0.0, due - time.monotonic()))
        if self._fail_frame is not None and not self._stop.is_set():
            self.active = False
            if self._finished_callback:
                self._finished_callback()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        was_active, self.active = self.active, False
        if was_active and self._finished_callback:
            self._finished_callback()

    def close(self) -> None:
        self.stop()


def read_until(capture, n_samples: int, deadline_s: float = 10.0) -> np.ndarray:
    """What ``capture.read`` gives until ``n_samples`` came or ``deadline_s`` passed (the capture keeps running)."""
    parts, got = [], 0
    end = time.monotonic() + deadline_s
    while got < n_samples and time.monotonic() < end:
        part = capture.read(0.2)
        parts.append(part)
        got += part.size
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)

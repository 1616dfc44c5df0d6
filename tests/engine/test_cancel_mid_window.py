"""Cancelling a long file job returns within a decoder step, not at the end of the 30 s window being decoded
(a tiny random Whisper, which decodes a window of a chirp for many seconds: long loops and fallbacks)."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.append(str(Path(__file__).resolve().parents[1]))  # after the root: tests/engine must not shadow engine
from whisper_fixtures import tiny_whisper_pack  # noqa: E402

from engine.errors import CancelledError  # noqa: E402
from engine.whisper import TranscribeOptions, WhisperModel  # noqa: E402


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> WhisperModel:
    return WhisperModel.load(tiny_whisper_pack(tmp_path_factory), device="cpu", threads=1)


def test_a_cancel_in_the_middle_of_a_window_returns_at_once(model):
    t = np.arange(16000 * 30) / 16000
    audio = (0.3 * np.sin(2 * np.pi * (200 + 30 * t) * t)).astype(np.float32)
    cancel, done = threading.Event(), []
    outcome: dict[str, object] = {}

    def job() -> None:
        try:
            model.transcribe(audio, TranscribeOptions(language="en", beam_size=1), lambda s, _: done.append(s), cancel)
            outcome["finished"] = True
        except CancelledError as e:
            outcome["cancelled"] = str(e)
        outcome["at"] = time.monotonic()

    worker = threading.Thread(target=job)
    worker.start()
    time.sleep(1.5)  # well into the first window's decode
    assert not [s for s in done if s > 0], "the first window was already decoded: the test cancels too late"
    cancel.set()
    cancelled_at = time.monotonic()
    worker.join(30)
    assert outcome.get("cancelled") == "transcription cancelled at 0.0 s", outcome
    assert outcome["at"] - cancelled_at < 1.0, f"returned {outcome['at'] - cancelled_at:.2f} s after the cancel"

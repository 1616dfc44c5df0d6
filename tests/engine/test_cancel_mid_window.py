"""Cancelling a long file job returns within a decoder step, not at the end of the 30 s window being decoded
(a tiny random Whisper decoding a window of a chirp).

The cancel is set from inside the third decoder step of the first window, so the test does not depend on how
fast this CPU decodes (CI once decoded the whole first window before a wall-clock cancel at 1.5 s): what it
checks is that no further decoder step runs after the cancel and the job says where it stopped."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import numpy as np
import pytest

sys.path.append(str(Path(__file__).resolve().parents[1]))  # after the root: tests/engine must not shadow engine
from whisper_fixtures import tiny_whisper_pack  # noqa: E402

from engine.errors import CancelledError  # noqa: E402
from engine.whisper import TranscribeOptions, WhisperModel  # noqa: E402

CANCEL_AT_STEP = 3


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> WhisperModel:
    return WhisperModel.load(tiny_whisper_pack(tmp_path_factory), device="cpu", threads=1)


def test_a_cancel_in_the_middle_of_a_window_stops_at_the_next_decoder_step(model, monkeypatch):
    t = np.arange(16000 * 30) / 16000
    audio = (0.3 * np.sin(2 * np.pi * (200 + 30 * t) * t)).astype(np.float32)
    cancel, done = threading.Event(), []
    steps = {"before": 0, "after": 0}
    real_step = model.decoder.step

    def counting_step(cache, tokens):
        steps["after" if cancel.is_set() else "before"] += 1
        if steps["before"] == CANCEL_AT_STEP and not cancel.is_set():
            cancel.set()  # the user presses Cancel while this step runs
        return real_step(cache, tokens)

    monkeypatch.setattr(model.decoder, "step", counting_step)
    with pytest.raises(CancelledError, match=r"^transcription cancelled at 0\.0 s$"):
        model.transcribe(audio, TranscribeOptions(language="en", beam_size=1), lambda s, _: done.append(s), cancel)
    assert steps["before"] == CANCEL_AT_STEP, steps
    assert steps["after"] == 0, f"{steps['after']} decoder steps ran after the cancel"
    assert not done, f"a window was reported finished after the cancel: {done}"


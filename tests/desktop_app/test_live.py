"""Live mode through the real engine session: an injected stream replays a clip; a PulseAudio monitor."""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest
import soundfile as sf

import engine.live.session  # noqa: F401  (what the window drives live: if it cannot be imported, these tests fail)
from conftest_pulse import pulse_server  # noqa: F401
from engine.audio.capture import Capture, DeviceInfo, list_devices
from engine.errors import AudioDeviceError
from fake_audio import FakeInputStream
from tests.desktop_app.stall_probe import StallProbe, assert_not_frozen

pytestmark = pytest.mark.model

FOX = "The quick brown fox jumps over the lazy dog. She sells sea shells by the sea shore."


def replaying(path, speed: float = 1.0):
    """audio_source_factory for the window: each Start replays the clip through a Capture's callback."""
    clip, rate = sf.read(str(path), dtype="float32")
    # Silence around the speech, as a microphone goes on delivering after the speaker stops: the
    # session hears the pause (2 s) that ends a sentence before the replay ends.
    clip = np.concatenate([np.zeros(rate // 2, np.float32), clip, np.zeros(3 * rate, np.float32)])

    def stream(**kwargs):
        factory.streams.append(FakeInputStream(clip, rate, speed=speed, **kwargs))
        return factory.streams[-1]

    def factory(device):
        # A replay ends where the clip does; that is not a device that went silent (no stall timeout).
        device = device if isinstance(device, DeviceInfo) else DeviceInfo(None, "Test replay", "test", 1, float(rate))
        return Capture(device, stall_timeout_s=None, stream_factory=stream)

    factory.streams = []
    factory.played = lambda: bool(factory.streams) and not factory.streams[-1]._thread.is_alive()
    return factory


def _ready(window, qtbot):
    qtbot.waitUntil(lambda: window._model_state in ("ready", "failed"), timeout=120_000)
    assert window._model_state == "ready", window.banner.message()


def test_start_shows_committed_words_and_stop_drains_everything(make_window, qtbot, pack_int8, speech_clip,
                                                                record_property):
    clip = speech_clip("fox", FOX)
    source = replaying(clip)
    window = make_window(pack=pack_int8, audio_source_factory=source)
    _ready(window, qtbot)
    probe = StallProbe()
    probe.start()
    window.controls.start_button.click()
    qtbot.waitUntil(lambda: window.live_state() == "running", timeout=30_000)
    qtbot.waitUntil(lambda: "fox" in window.transcript.transcript_text().lower(), timeout=60_000)
    assert any(r.committed for r in window.transcript.rows())
    qtbot.waitUntil(source.played, timeout=60_000)  # the whole clip was heard ...
    window.controls.start_button.click()  # ... then Stop, before the session has caught up
    assert window.live_state() == "finishing"
    qtbot.waitUntil(lambda: window.live_state() == "idle", timeout=60_000)
    stall_s = probe.stop()
    record_property("max_event_loop_stall_live_ms", round(stall_s * 1000, 1))
    print(f"max event-loop stall while live: {stall_s * 1000:.1f} ms")
    text = window.transcript.transcript_text().lower()
    for word in ("quick", "brown", "fox", "lazy", "dog"):
        assert word in text, text
    assert all(r.committed for r in window.transcript.rows())  # the tail was flushed, not dropped
    assert window.overlay.caption_text()
    assert_not_frozen(probe, stall_s)


def test_translation_pane_fills_when_a_target_is_set(make_window, qtbot, pack_int8, clip_dir):
    from bench import clips

    spanish = clips.synthesize(next(c for c in clips.clips("es") if c.id == "es01"), clip_dir)
    window = make_window(pack=pack_int8, audio_source_factory=replaying(spanish))
    window.controls.select_languages("es", "en")
    _ready(window, qtbot)
    window.controls.start_button.click()
    qtbot.waitUntil(lambda: window.transcript.translation_text() != "", timeout=90_000)
    window.controls.start_button.click()
    qtbot.waitUntil(lambda: window.live_state() == "idle", timeout=60_000)
    assert window.transcript.translation_text() != window.transcript.transcript_text()
    assert not window.view.isColumnHidden(2)


def test_a_device_that_cannot_open_is_a_sentence_and_start_works_again(make_window, qtbot, pack_int8, speech_clip):
    good = replaying(speech_clip("fox", FOX), speed=4.0)
    calls = []

    def flaky(device):
        calls.append(device)
        if len(calls) == 1:
            raise AudioDeviceError("could not open the audio device 'USB Headset' at 48000 Hz, 44100 Hz; "
                                   "close other programs that use it, or choose another device")
        return good(device)

    window = make_window(pack=pack_int8, audio_source_factory=flaky)
    _ready(window, qtbot)
    window.controls.start_button.click()
    qtbot.waitUntil(lambda: window.banner.isVisible() and window.live_state() == "idle", timeout=30_000)
    assert "USB Headset" in window.banner.message() and "Traceback" not in window.banner.message()
    window.controls.start_button.click()
    qtbot.waitUntil(lambda: window.live_state() == "running", timeout=30_000)
    qtbot.waitUntil(lambda: "fox" in window.transcript.transcript_text().lower(), timeout=60_000)
    window.controls.start_button.click()
    qtbot.waitUntil(lambda: window.live_state() == "idle", timeout=60_000)
    assert not window.banner.isVisible()


@pytest.mark.pulse
def test_end_to_end_what_the_computer_plays_appears_in_the_window(make_window, qtbot, pack_int8, speech_clip,
                                                                    pulse_server):  # noqa: F811
    """The real pieces: PulseAudio null sink, paplay, the app capturing its monitor via sounddevice."""
    clip = speech_clip("fox", FOX)
    window = make_window(pack=pack_int8, list_devices=list_devices)
    picker = window.controls.devices
    picker.refresh()
    index = next((i for i in range(picker.combo.count())
                  if getattr(picker.combo.itemData(i), "pulse_source", None) == pulse_server.monitor), -1)
    assert index > 0, [picker.combo.itemText(i) for i in range(picker.combo.count())]
    picker.combo.setCurrentIndex(index)
    assert "(computer audio)" in picker.combo.currentText()
    _ready(window, qtbot)
    window.controls.start_button.click()
    qtbot.waitUntil(lambda: window.live_state() == "running", timeout=30_000)
    player = subprocess.Popen(["paplay", f"--device={pulse_server.sink}", str(clip)],
                              env={**os.environ, **pulse_server.env})
    try:
        qtbot.waitUntil(lambda: "fox" in window.transcript.transcript_text().lower(), timeout=90_000)
    finally:
        player.wait(60)
    window.controls.start_button.click()
    qtbot.waitUntil(lambda: window.live_state() == "idle", timeout=60_000)
    assert "lazy dog" in window.transcript.transcript_text().lower()


def test_a_device_lost_mid_stream_is_shown_and_the_app_is_ready_to_start_again(make_window, qtbot, pack_int8,
                                                                                speech_clip):
    clip, rate = sf.read(str(speech_clip("fox", FOX)), dtype="float32")

    def unplugged(device):
        return Capture(DeviceInfo(None, "USB Mic", "test", 1, float(rate)),
                       stream_factory=FakeInputStream.factory(clip, rate, fail_at_s=2.0, speed=2.0))

    window = make_window(pack=pack_int8, audio_source_factory=unplugged)
    _ready(window, qtbot)
    window.controls.start_button.click()
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=60_000)
    assert "USB Mic" in window.banner.message() and "stopped delivering audio" in window.banner.message()
    qtbot.waitUntil(lambda: window.live_state() == "idle", timeout=60_000)
    assert window.controls.start_button.isEnabled()


def test_a_corrected_live_line_is_saved_from_the_sessions_recording(make_window, qtbot, pack_int8, speech_clip):
    """Live sessions are recorded on the transcript's clock, so a line corrected after Stop becomes a training clip
    of that line's audio."""
    from desktop_app.transcript_model import TEXT_COL
    from engine import corrections as corr

    clip = speech_clip("fox", FOX)
    source = replaying(clip)
    window = make_window(pack=pack_int8, audio_source_factory=source)
    _ready(window, qtbot)
    window.controls.start_button.click()
    qtbot.waitUntil(lambda: window.live_state() == "running", timeout=30_000)
    qtbot.waitUntil(source.played, timeout=60_000)
    window.controls.start_button.click()
    qtbot.waitUntil(lambda: window.live_state() == "idle", timeout=60_000)
    recording = window.training.audio
    assert recording and recording.startswith(str(corr.recordings_root()))
    heard, rate = sf.read(recording, dtype="float32")
    played = sf.info(str(clip)).duration + 3.5  # the replay adds 0.5 s before and 3 s after
    assert rate == 16000 and abs(heard.size / rate - played) < 0.5
    rows = window.transcript.committed_rows()
    assert rows and "fox" in rows[0].text.lower()
    assert window.transcript.setData(window.transcript.index(0, TEXT_COL), "The quick brown Foxworthy jumps.")
    assert window.save_corrections()
    qtbot.waitUntil(lambda: not window.training.saving, timeout=30_000)
    saved = list(corr.training_root().glob("*.wav"))
    assert len(saved) == 1, window.banner.message()
    audio, _ = sf.read(saved[0], dtype="float32")
    row = window.transcript.rows()[0]
    expected = row.end_s + corr.PAD_S - max(0.0, row.start_s - corr.PAD_S)
    assert abs(audio.size / 16000 - expected) < 0.05
    assert float(np.sqrt(np.mean(audio ** 2))) > 0.01  # speech, not the silence around it

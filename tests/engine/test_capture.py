"""Capture: a fake device replaying clips through the real callback path, and real PulseAudio capture."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time

import numpy as np
import pytest
import soundfile as sf

from conftest_pulse import pulse_server  # noqa: F401  (fixture)
from engine.audio.capture import AudioRing, Capture, DeviceInfo, find_device, list_devices, pulse_sources
from engine.audio.decode import resample
from engine.errors import AudioDeviceError
from fake_audio import FakeInputStream, read_until
from needs import require_command

SR = 16000


def fake_device(rate: float = 48000, channels: int = 2, name: str = "Fake Mic") -> DeviceInfo:
    return DeviceInfo(7, name, "Fake", channels, rate)


def chirp(seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * (200 + 400 * t) * t)).astype(np.float32)


def test_fake_stream_replay_comes_out_as_the_right_16khz_mono_samples():
    left, right = chirp(2.0, 48000), 0.25 * chirp(2.0, 48000)
    stereo = np.stack([left, right], axis=1)
    capture = Capture(fake_device(48000), stream_factory=FakeInputStream.factory(stereo, 48000))
    capture.start()
    first = read_until(capture, 31500)  # all but the resampler's held-back tail
    capture.stop()
    got = np.concatenate([first, capture.drain()])
    expected = resample((left + right) / 2, 48000, SR)
    assert capture.sample_rate == 48000 and capture.channels == 2
    assert got.size == expected.size == 32000
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert capture.dropped_blocks == 0


def test_the_device_default_rate_is_tried_first_then_the_common_rates():
    clip = chirp(1.0, 44100)
    device = fake_device(rate=22050, channels=1)
    capture = Capture(device, stream_factory=FakeInputStream.factory(clip, 44100, supported_rates=(44100,)))
    capture.start()
    got = read_until(capture, 15000)
    capture.stop()
    got = np.concatenate([got, capture.drain()])
    assert capture.sample_rate == 44100
    np.testing.assert_allclose(got, resample(clip, 44100, SR), atol=1e-5)


def test_a_device_that_opens_at_no_rate_is_an_error_naming_it_and_the_rates():
    factory = FakeInputStream.factory(chirp(1.0, 8000), 8000, supported_rates=(96000,))
    capture = Capture(fake_device(rate=12000, name="USB Headset"), stream_factory=factory)
    with pytest.raises(AudioDeviceError) as err:
        capture.start()
    message = str(err.value)
    assert "USB Headset" in message
    for rate in ("12000 Hz", "48000 Hz", "44100 Hz", "16000 Hz", "8000 Hz"):
        assert rate in message


def test_a_full_ring_drops_the_oldest_block_and_counts_it():
    ring = AudioRing(capacity_blocks=3)
    for i in range(5):
        ring.put(np.full((10, 1), i, np.float32))
    blocks = ring.get_all(0)
    assert [int(b[0, 0]) for b in blocks] == [2, 3, 4]
    assert ring.dropped_blocks == 2 and ring.dropped_frames == 20
    assert ring.get_all(0.01) == []


def test_a_reader_that_falls_behind_loses_the_oldest_audio_not_the_newest():
    clip = np.arange(48000 * 3, dtype=np.float32) / (48000 * 3)  # a ramp: position is readable from value
    ring = AudioRing(capacity_blocks=10)
    capture = Capture(fake_device(48000, 1), ring=ring, stream_factory=FakeInputStream.factory(clip, 48000))
    capture.start()
    deadline = time.monotonic() + 10  # the 60 blocks arrive in 3 s; a stream that stops short must not hang
    while capture.ring.dropped_blocks < 50 and time.monotonic() < deadline:  # the reader never reads
        time.sleep(0.01)
    capture.stop()
    got = capture.drain()
    assert capture.dropped_blocks == 50
    assert got.size == pytest.approx(10 * 2400 / 3, abs=60)
    assert got[got.size // 2] > 0.8  # what is left is the end of the ramp


def test_a_device_lost_mid_stream_raises_after_its_audio_is_read_and_can_be_restarted():
    clip = chirp(3.0, 48000)
    capture = Capture(fake_device(48000, 1, "Bluetooth Mic"),
                      stream_factory=FakeInputStream.factory(clip, 48000, fail_at_s=1.0, speed=8.0))
    capture.start()
    got = []
    with pytest.raises(AudioDeviceError, match="Bluetooth Mic.*stopped delivering audio"):
        for _ in range(100):
            got.append(capture.read(0.5))
    assert sum(g.size for g in got) >= 15000  # the second before the failure was not thrown away
    capture.stop()
    again = Capture(fake_device(48000, 1), stream_factory=FakeInputStream.factory(clip, 48000))
    again.start()
    assert read_until(again, 16000).size >= 16000
    again.stop()


def test_a_device_that_goes_silent_is_reported_as_stalled():
    capture = Capture(fake_device(48000, 1, "Stuck Mic"), stall_timeout_s=0.3,
                      stream_factory=FakeInputStream.factory(chirp(0.2, 48000), 48000))
    capture.start()
    with pytest.raises(AudioDeviceError, match="Stuck Mic.*no audio"):
        for _ in range(20):
            capture.read(0.2)
    capture.stop()


def test_the_level_of_what_was_read_is_measured():
    tone = (0.5 * np.sin(2 * np.pi * 1000 * np.arange(48000) / 48000)).astype(np.float32)
    capture = Capture(fake_device(48000, 1), stream_factory=FakeInputStream.factory(tone, 48000))
    capture.start()
    read_until(capture, 8000)
    capture.stop()
    assert capture.last_level.peak == pytest.approx(0.5, abs=0.01)
    assert capture.last_level.rms_db == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.3)


def test_devices_are_found_by_index_name_part_or_pulse_source():
    devices = [DeviceInfo(0, "HDA Intel PCH: ALC3246 Analog (hw:0,0)", "ALSA", 2, 44100.0),
               DeviceInfo(4, "pulse", "ALSA", 32, 44100.0),
               DeviceInfo(4, "Monitor of Speakers", "PulseAudio", 2, 48000.0, True, "alsa_output.pci.monitor")]
    assert find_device(0, devices).name.startswith("HDA")
    assert find_device("4", devices).name == "pulse"
    assert find_device("alc3246", devices).index == 0
    assert find_device("alsa_output.pci.monitor", devices).is_monitor
    with pytest.raises(AudioDeviceError, match="no audio input device match 'Yeti'.*HDA Intel"):
        find_device("Yeti", devices)


def test_pulse_sources_are_read_from_pactl_json_or_short_listings(monkeypatch):
    listing = [{"name": "alsa_input.usb-mic", "description": "USB Mic", "sample_specification": "s16le 1ch 44100Hz",
                "properties": {"device.class": "sound"}},
               {"name": "alsa_output.hdmi.monitor", "description": "Monitor of HDMI",
                "sample_specification": "s32le 2ch 48000Hz", "properties": {"device.class": "monitor"}}]

    def run_json(cmd, **_):
        return subprocess.CompletedProcess(cmd, 0, json.dumps(listing), "")

    def run_short(cmd, **_):
        if "--format=json" in cmd:
            return subprocess.CompletedProcess(cmd, 1, "", "unknown option")
        return subprocess.CompletedProcess(cmd, 0, "1\talsa_input.usb-mic\tmodule-alsa-card.c\ts16le 1ch 44100Hz\t"
                                           "RUNNING\n2\talsa_output.hdmi.monitor\tmodule-alsa-card.c\t"
                                           "s32le 2ch 48000Hz\tIDLE\n", "")

    monkeypatch.setattr("engine.audio.capture.shutil.which", lambda name: f"/usr/bin/{name}")  # the runner is faked
    for run in (run_json, run_short):
        mic, monitor = pulse_sources(run)
        assert (mic.pulse_source, mic.is_monitor, mic.default_samplerate, mic.max_input_channels) == \
            ("alsa_input.usb-mic", False, 44100.0, 1)
        assert (monitor.pulse_source, monitor.is_monitor, monitor.default_samplerate) == \
            ("alsa_output.hdmi.monitor", True, 48000.0)


@pytest.mark.pulse
def test_what_the_computer_plays_is_captured_from_the_monitor_source(pulse_server, tmp_path):  # noqa: F811
    require_command("espeak-ng", "espeak-ng")
    wav = tmp_path / "said.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), "The quick brown fox jumps over the lazy dog."], check=True)
    speech, rate = sf.read(wav, dtype="float32")
    reference = resample(speech, rate, SR)

    devices = list_devices()
    monitors = [d for d in devices if d.pulse_source == pulse_server.monitor]
    assert monitors and monitors[0].is_monitor, f"{pulse_server.monitor} not in {devices}"
    # Another source is the server's default, so hearing the sentence proves PULSE_SOURCE picked ours.
    pactl = ["pactl", "--server", pulse_server.server]
    default = subprocess.run(pactl + ["get-default-source"], capture_output=True, text=True).stdout.strip()
    other = subprocess.run(pactl + ["load-module", "module-null-sink", "sink_name=parley_other"],
                           capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run(pactl + ["set-default-source", "parley_other.monitor"], check=True)
    capture = Capture(monitors[0])
    try:
        capture.start()
        read_until(capture, SR // 10, deadline_s=5.0)  # the pulse stream takes ~2 s to deliver its first block
        subprocess.run(["paplay", f"--device={pulse_server.sink}", str(wav)], check=True, timeout=30,
                       env={**os.environ, **pulse_server.env})
        got = read_until(capture, reference.size + SR, deadline_s=15)
    finally:
        capture.stop()
        subprocess.run(pactl + ["set-default-source", default or pulse_server.monitor])
        subprocess.run(pactl + ["unload-module", other])
    got = np.concatenate([got, capture.drain()])
    assert capture.dropped_blocks == 0
    # The played sentence is in the recording: the normalised cross-correlation peaks near 1. (A monitor
    # source that wakes up can miss the first tens of milliseconds, so partial overlap is allowed.)
    corr = np.correlate(got, reference, mode="full")
    lag = int(np.argmax(np.abs(corr))) - (reference.size - 1)  # got[lag + i] ~ reference[i]
    ref_part = reference[max(0, -lag):min(reference.size, got.size - lag)]
    got_part = got[max(0, lag):max(0, lag) + ref_part.size]
    similarity = abs(float(ref_part @ got_part)) / (np.linalg.norm(ref_part) * np.linalg.norm(got_part) + 1e-12)
    assert similarity > 0.9, f"captured audio does not match what was played (similarity {similarity:.2f})"
    assert ref_part.size >= 0.95 * reference.size, f"only {ref_part.size / SR:.2f} s of the sentence was captured"
    # And nothing but silence around it.
    outside = np.concatenate([got[:max(0, lag - 800)], got[max(0, lag) + ref_part.size + 800:]])
    assert outside.size == 0 or np.sqrt(np.mean(outside ** 2)) < 0.01 * np.sqrt(np.mean(reference ** 2)) + 1e-4


def test_stopping_from_two_threads_at_once_stops_and_closes_the_stream_once():
    """The GUI stops a session while its worker, ending, stops the capture too: PortAudio must see one stop."""
    calls: list[str] = []
    busy = threading.Lock()

    class SlowStream:
        def __init__(self, **kwargs):
            pass

        def start(self):
            pass

        def stop(self):
            assert busy.acquire(blocking=False), "stop() ran on one stream from two threads at once"
            calls.append("stop")
            time.sleep(0.2)
            busy.release()

        def close(self):
            assert "close" not in calls, "close() ran twice"
            calls.append("close")

    capture = Capture(fake_device(48000, 1), stream_factory=SlowStream, stall_timeout_s=None)
    capture.start()
    errors: list[BaseException] = []

    def stop():
        try:
            capture.stop()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=stop) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert not errors and calls == ["stop", "close"]

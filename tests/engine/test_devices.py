"""Capture devices that go wrong: one unplugged mid-stream (a PulseAudio sink unloaded while `parley live`
records its monitor), one another program holds (busy), one that only runs at 8 kHz. Each is a message naming
the device, and nothing already heard is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest_pulse import pulse_server  # noqa: F401  (fixture)
from engine.audio.capture import Capture, DeviceInfo, list_devices
from engine.audio.decode import resample
from engine.errors import AudioDeviceError
from fake_audio import FakeInputStream, read_until
from needs import require_command, require_or_skip

ROOT = Path(__file__).resolve().parents[2]
SR = 16000
UNPLUG_SINK = "parley_unplug"  # a sink of this test's own, so the shared parley_test sink stays


def tone(seconds: float, rate: int, hz: float = 1000.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def read_all(capture: Capture, n_samples: int, deadline_s: float = 10.0) -> np.ndarray:
    """read_until, then stop and drain: everything the capture had."""
    first = read_until(capture, n_samples, deadline_s)
    capture.stop()
    return np.concatenate([first, capture.drain()])


def run_live(pack, device: str, out, env, sink: str, speech, end, timeout: float) -> tuple[int, str, str]:
    """`parley live` on ``device`` writing ``out``: once it says '[listening to' (the model is loaded and the
    stream runs) ``speech`` is played into ``sink``, the last sentence gets 3 s to be finalised at its pause,
    then ``end(process)`` ends it. Returns (exit code, stdout, stderr); stderr is read by one reader thread
    alone, so no line is lost."""
    live = subprocess.Popen([sys.executable, "-m", "engine", "live", "--model", str(pack), "--language", "en",
                             "--threads", "2", "--device", device, "-o", str(out)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    listening = threading.Event()

    def read_stderr() -> None:
        for line in live.stderr:
            lines.append(line)
            if "[listening to" in line:
                listening.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        assert listening.wait(60), "".join(lines)
        subprocess.run(["paplay", f"--device={sink}", str(speech)], check=True, timeout=60, env=env)
        time.sleep(3.0)
        end(live)
        stdout = live.stdout.read()
        live.wait(timeout)
        reader.join(10)
    finally:
        if live.poll() is None:
            live.kill()
            live.communicate()
    return live.returncode, stdout, "".join(lines)


@pytest.mark.parametrize("default_rate", [8000.0, 44100.0], ids=["says-8k", "claims-44.1k"])
def test_an_8khz_only_device_is_opened_at_8khz_and_resampled_to_16khz(default_rate):
    """A fake stream: it refuses every rate but 8000 as PortAudio does ('Invalid sample rate [PaErrorCode
    -9997]'), also when the device's default rate says otherwise, as some headset drivers do. PulseAudio cannot
    show such a device: a source it runs at 8 kHz still opens at 16 and 48 kHz (the server resamples; tried with
    a null sink at rate=8000), so the real 8 kHz source is the test after this one."""
    clip = tone(1.0, 8000, hz=440.0)
    capture = Capture(DeviceInfo(3, "Bluetooth Headset (HFP)", "ALSA", 1, default_rate),
                      stream_factory=FakeInputStream.factory(clip, 8000, supported_rates=(8000,)))
    capture.start()
    got = read_all(capture, SR - 1000)  # (the resampler holds its last few samples back until drained)
    assert capture.sample_rate == 8000
    assert got.size == SR  # one second at 16 kHz, nothing dropped
    np.testing.assert_allclose(got, resample(clip, 8000, SR), atol=1e-5)


EIGHT_K_SINK = "parley_8k"  # a mono null sink run at 8 kHz: its monitor is an 8 kHz source


@pytest.fixture
def eight_k_sink(pulse_server):  # noqa: F811
    pactl = ["pactl", "--server", pulse_server.server]
    module = subprocess.run(pactl + ["load-module", "module-null-sink", f"sink_name={EIGHT_K_SINK}", "rate=8000",
                                     "channels=1"], capture_output=True, text=True, check=True).stdout.strip()
    yield f"{EIGHT_K_SINK}.monitor"
    subprocess.run(pactl + ["unload-module", module], capture_output=True)


@pytest.mark.pulse
def test_a_real_8khz_source_is_recorded_at_8khz_and_heard_whole_at_16khz(eight_k_sink, pulse_server, tmp_path):
    """A telephone-band source through PortAudio and a real PulseAudio server: opened at its own 8 kHz (the server
    does not resample it), one second of tone played into it arrives as one second at 16 kHz, at its pitch and
    level. (The tone has silence around it: a stream played into a null sink loses about 50 ms at one of its
    edges on the monitor, at 48 kHz as well — PulseAudio's, seen with the capture already running.)"""
    device = next(d for d in list_devices() if d.pulse_source == eight_k_sink)
    assert device.default_samplerate == 8000
    played = tmp_path / "tone.wav"
    pad = np.zeros(4000, np.float32)
    sf.write(played, np.concatenate([pad, tone(1.0, 8000, hz=440.0), pad]), 8000, subtype="PCM_16")
    capture = Capture(device)
    capture.start()
    try:
        assert capture.sample_rate == 8000
        time.sleep(0.3)  # the stream runs before the tone starts
        subprocess.run(["paplay", f"--device={EIGHT_K_SINK}", str(played)], check=True, timeout=30,
                       env={**os.environ, **pulse_server.env})
        got = read_all(capture, 10 * SR, deadline_s=1.5)
    finally:
        capture.stop()
    loud = np.flatnonzero(np.abs(got) > 0.05)
    heard_s = (loud[-1] - loud[0]) / SR
    assert abs(heard_s - 1.0) < 0.01, f"{heard_s:.3f} s of the 1 s tone was heard"
    middle = got[loud[0] + SR // 4:loud[0] + 3 * SR // 4]
    spectrum = np.abs(np.fft.rfft(middle))
    assert np.fft.rfftfreq(middle.size, 1 / SR)[spectrum.argmax()] == pytest.approx(440.0, abs=2.0)
    assert np.sqrt(np.mean(middle ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.02)


@pytest.mark.model
@pytest.mark.pulse
def test_parley_live_on_a_real_8khz_source_transcribes_what_is_said(eight_k_sink, pulse_server, pack_int8,
                                                                    tmp_path):  # noqa: F811
    """A recorded human voice at telephone rate (espeak-ng's voice at 8 kHz is too harsh for whisper-base even
    from the file: 'a train of a baby leaf that died in the morning'), played into the 8 kHz source while
    `parley live` records it: the sentences are heard as they are from the file.

    Only the first two sentences are asserted: on this 2-core machine shared by other jobs, the third ('It was the
    epoch of belief') was missing from 2 of 4 runs through a PulseAudio source at 8 kHz (0 of 4 at 48 kHz, 0 of 3
    through `--input --realtime`): a loss in live decoding under load, reported on issue 13, not a device
    fault — the device delivered every block (0 dropped)."""
    from bench.clips import human_clips
    from engine.errors import ParleyError

    try:
        (voice,) = [p for p in human_clips(tmp_path / "clips") if p.stem == "two_cities"]
    except ParleyError as e:
        require_or_skip(str(e))
    audio, rate = sf.read(voice, dtype="float32")
    said = audio[:12 * rate] if audio.ndim == 1 else audio[:12 * rate].mean(axis=1)
    phone = resample(np.concatenate([said, np.zeros(int(2.5 * rate), np.float32)]), rate, 8000)
    speech = tmp_path / "said.wav"
    sf.write(speech, phone, 8000, subtype="PCM_16")  # telephone-band speech, a pause to end it
    out = tmp_path / "heard.srt"
    env = {**os.environ, **pulse_server.env, "PARLEY_HOME": str(tmp_path / "home")}
    code, stdout, stderr = run_live(pack_int8, eight_k_sink, out, env, EIGHT_K_SINK, speech,
                                    lambda live: live.send_signal(signal.SIGINT), timeout=60)  # Ctrl-C
    assert code == 0, stderr
    assert "Traceback" not in stderr and "0 audio blocks dropped" in stderr, stderr
    heard = " ".join(out.read_text().lower().split())
    for words in ("best of times", "worst of times", "age of wisdom", "age of foolishness"):
        assert words in heard, (heard, stdout, stderr)


BUSY = """
import sounddevice
from engine.audio.capture import Capture, DeviceInfo
opened = []
def busy(**kwargs):
    opened.append(kwargs["samplerate"])
    raise sounddevice.PortAudioError("Error opening InputStream: Device unavailable [PaErrorCode -9985]")
try:
    Capture(DeviceInfo(2, "USB Audio CODEC: Audio (hw:1,0)", "ALSA", 2, 48000.0), stream_factory=busy).start()
except Exception as e:
    print(type(e).__name__, opened, e)
"""


def test_a_busy_device_is_said_to_be_busy_naming_it():
    """A fake stream that fails to open with PortAudio's own error type and message for a device another program
    holds (an ALSA hw device opened exclusively; PulseAudio mixes its clients, so it cannot make one busy). In a
    process of its own: importing sounddevice fixes PortAudio's device list, and the PulseAudio tests after this
    one need it read once their server runs."""
    proc = subprocess.run([sys.executable, "-c", BUSY], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    kind, message = proc.stdout.split(" ", 1)
    assert kind == "AudioDeviceError", proc.stdout
    assert message.startswith("[48000] ")  # told at once, not after trying every rate
    assert "'USB Audio CODEC: Audio (hw:1,0)' is busy" in message and "another program" in message
    assert "Device unavailable" in message and "close that program" in message


@pytest.fixture
def unplug_sink(pulse_server):  # noqa: F811
    """A null sink loaded for this test; the test unloads it (unplugs it), or the fixture does afterwards."""
    pactl = ["pactl", "--server", pulse_server.server]
    module = subprocess.run(pactl + ["load-module", "module-null-sink", f"sink_name={UNPLUG_SINK}", "rate=48000"],
                            capture_output=True, text=True, check=True).stdout.strip()
    state = {"module": module, "unplug": lambda: subprocess.run(pactl + ["unload-module", module], check=True)}
    yield state
    subprocess.run(pactl + ["unload-module", module], capture_output=True)  # (already gone when unplugged)


@pytest.mark.pulse
def test_a_pulse_source_removed_mid_stream_fails_naming_it_instead_of_recording_another_one(unplug_sink):
    """PulseAudio moves a recording whose source goes away to another source and PortAudio keeps delivering
    (seen: blocks of silence from the default monitor), so the capture must notice by itself."""
    device = next(d for d in list_devices() if d.pulse_source == f"{UNPLUG_SINK}.monitor")
    capture = Capture(device)
    capture.start()
    try:
        got = 0
        end = time.monotonic() + 5
        while time.monotonic() < end:
            got += capture.read(0.2).size
        assert got > SR, "the monitor delivered no audio before the unplug"
        unplug_sink["unplug"]()
        unplugged_at = time.monotonic()
        with pytest.raises(AudioDeviceError) as err:
            while time.monotonic() - unplugged_at < 10:
                capture.read(0.2)
        assert time.monotonic() - unplugged_at < 5, "the removal took too long to notice"
    finally:
        capture.stop()
    assert f"({UNPLUG_SINK}.monitor) was removed" in str(err.value)


@pytest.mark.model
@pytest.mark.pulse
def test_parley_live_on_a_device_unplugged_mid_stream_ends_naming_it_and_keeps_what_it_heard(
        unplug_sink, pulse_server, pack_int8, tmp_path):  # noqa: F811
    require_command("espeak-ng", "espeak-ng")
    speech = tmp_path / "said.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(speech),
                    "The train to the city leaves at nine in the morning."], check=True)
    audio, rate = sf.read(speech, dtype="float32")
    sf.write(speech, np.concatenate([audio, np.zeros(int(2.5 * rate), np.float32)]), rate)  # a pause ends it
    out = tmp_path / "heard.srt"
    env = {**os.environ, **pulse_server.env, "PARLEY_HOME": str(tmp_path / "home")}
    code, stdout, stderr = run_live(pack_int8, f"{UNPLUG_SINK}.monitor", out, env, UNPLUG_SINK, speech,
                                    lambda live: unplug_sink["unplug"](), timeout=30)
    assert code == 1, stderr
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("parley: error: ")]
    assert len(errors) == 1 and f"({UNPLUG_SINK}.monitor) was removed" in errors[0], stderr
    assert stderr.count("was removed") == 1, stderr  # said once, not again as a warning from the session
    assert "train" in stdout.lower(), (stdout, stderr)  # the sentence heard before the unplug was printed
    assert out.is_file() and "train" in out.read_text().lower(), stderr  # and written

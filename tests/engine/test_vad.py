"""Silero VAD on onnxruntime: where it finds speech, and that silence and noise are not speech."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine.audio.decode import resample
from engine.errors import PackError
from needs import require_command, require_or_skip
from engine.audio.vad import (SILERO_SHA256, SILERO_WHEEL_MEMBER, SileroVad, VadGate, VadOptions, ensure_model,
                        fetch_model, segments_from_probs)

SR = 16000
LEAD_S, TAIL_S = 1.0, 1.5


@pytest.fixture(scope="session")
def vad_model() -> Path:
    try:
        return ensure_model()
    except PackError as e:
        require_or_skip(f"Silero VAD model unavailable: {e}")


@pytest.fixture(scope="session")
def spoken(clip_dir) -> tuple[np.ndarray, float]:
    """espeak-ng speech with 1 s of silence before it and 1.5 s after; returns (16 kHz clip, speech end)."""
    require_command("espeak-ng", "espeak-ng")
    wav = clip_dir / "vad_speech.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), "Hello, this is a test of the voice activity detector. "
                    "It should find the speech and nothing else."], check=True)
    speech, rate = sf.read(wav, dtype="float32")
    speech = resample(speech, rate, SR)
    clip = np.concatenate([np.zeros(int(LEAD_S * SR), np.float32), speech, np.zeros(int(TAIL_S * SR), np.float32)])
    return clip, LEAD_S + speech.size / SR


def test_speech_segments_lie_where_the_speech_is(vad_model, spoken):
    clip, speech_end_s = spoken
    segments = SileroVad(vad_model).speech_segments(clip)
    assert segments, "no speech found in an espeak-ng sentence"
    assert LEAD_S - 0.2 <= segments[0][0] <= LEAD_S + 0.3
    assert speech_end_s - 0.6 <= segments[-1][1] <= speech_end_s + 0.3
    covered = sum(e - s for s, e in segments)
    assert covered >= 0.7 * (speech_end_s - LEAD_S)
    assert all(0 <= s < e <= clip.size / SR for s, e in segments)


@pytest.mark.parametrize("name, audio", [
    ("digital silence", np.zeros(10 * SR, np.float32)),
    ("white noise at -40 dBFS", np.random.default_rng(0).normal(0, 0.01, 10 * SR).astype(np.float32)),
    ("a steady 440 Hz hum", (0.05 * np.sin(2 * np.pi * 440 * np.arange(10 * SR) / SR)).astype(np.float32)),
])
def test_silence_and_noise_have_no_speech(vad_model, name, audio):
    vad = SileroVad(vad_model)
    assert vad.speech_segments(audio) == [], name
    assert float(vad.speech_probs(audio).max()) < 0.5


def test_streaming_in_any_chunk_size_gives_the_whole_clip_probabilities(vad_model, spoken):
    clip, _ = spoken
    vad = SileroVad(vad_model)
    whole = vad.speech_probs(clip[: 200 * 512])
    streamed = []
    rng = np.random.default_rng(1)
    pos = 0
    while pos < 200 * 512:
        n = int(rng.integers(1, 3000))
        streamed += vad.feed(clip[pos:min(pos + n, 200 * 512)])
        pos += n
    np.testing.assert_allclose(streamed, whole, atol=1e-6)


def test_gate_opens_on_speech_and_closes_after_the_hangover(vad_model, spoken):
    clip, speech_end_s = spoken
    gate = VadGate(SileroVad(vad_model), hangover_s=0.5)
    chunk = SR // 10
    flags = [gate.update(clip[i:i + chunk]) for i in range(0, clip.size, chunk)]
    on = [i * 0.1 for i, f in enumerate(flags) if f]
    assert on, "the gate never opened"
    assert LEAD_S - 0.1 <= on[0] <= LEAD_S + 0.4
    assert speech_end_s - 0.5 <= on[-1] + 0.1 <= speech_end_s + 0.5 + 0.3
    assert not flags[-1] and not any(flags[:int(LEAD_S * 10) - 1])


def test_gate_stays_shut_on_noise(vad_model):
    gate = VadGate(SileroVad(vad_model))
    noise = np.random.default_rng(2).normal(0, 0.01, 5 * SR).astype(np.float32)
    assert not any(gate.update(noise[i:i + 1600]) for i in range(0, noise.size, 1600))


def test_speech_prob_takes_exactly_one_window(vad_model):
    with pytest.raises(ValueError, match="512"):
        SileroVad(vad_model).speech_prob(np.zeros(400, np.float32))


def test_segment_rules_min_speech_min_silence_and_padding():
    opts = VadOptions(threshold=0.5, min_speech_s=0.25, min_silence_s=0.1, speech_pad_s=0.03)
    w = 0.032
    probs = np.array([0.0] * 10 + [0.9] * 20 + [0.1] * 2 + [0.9] * 10 + [0.0] * 20  # 2-window dip: one segment
                     + [0.9] * 3 + [0.0] * 20  # 96 ms blip: too short
                     + [0.9] * 15, np.float32)  # runs to the end
    duration = probs.size * w
    segments = segments_from_probs(probs, duration, opts)
    assert len(segments) == 2
    assert segments[0] == pytest.approx((10 * w - 0.03, 42 * w + 0.03), abs=1e-3)
    assert segments[1] == pytest.approx(((probs.size - 15) * w - 0.03, duration), abs=1e-3)


def test_fetch_model_checks_the_wheel(tmp_path):
    fake = tmp_path / "silero_vad-6.2.3-py3-none-any.whl"
    with zipfile.ZipFile(fake, "w") as zf:
        zf.writestr(SILERO_WHEEL_MEMBER, b"not the model")
    with pytest.raises(PackError, match="sha256") as err:
        fetch_model(tmp_path / "out", wheel=fake)
    assert str(fake) in str(err.value)
    assert not (tmp_path / "out" / "silero_vad.onnx").exists()
    (tmp_path / "junk.whl").write_text("hello")
    with pytest.raises(PackError, match="junk.whl"):
        fetch_model(tmp_path / "out", wheel=tmp_path / "junk.whl")


def test_fetch_model_stores_the_pinned_file(vad_model, tmp_path):
    wheel = tmp_path / "w.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(SILERO_WHEEL_MEMBER, vad_model.read_bytes())
    path = fetch_model(tmp_path / "packs", wheel=wheel)
    assert path == tmp_path / "packs" / "silero_vad.onnx"
    import hashlib

    assert hashlib.sha256(path.read_bytes()).hexdigest() == SILERO_SHA256


def test_a_missing_model_file_is_named(tmp_path):
    with pytest.raises(PackError, match="nowhere.onnx.*fetch_vad"):
        SileroVad(tmp_path / "nowhere.onnx")


def test_a_damaged_model_file_is_named_with_what_to_do(tmp_path):
    junk = tmp_path / "silero_vad.onnx"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(PackError, match="silero_vad.onnx: not a loadable ONNX model.*fetch_vad"):
        SileroVad(junk)

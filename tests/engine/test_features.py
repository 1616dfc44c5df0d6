"""engine.features against Whisper: published filterbank values and a torch.stft reference."""

from __future__ import annotations

import time

import numpy as np
import pytest

from engine import features
from engine.features import HOP_LENGTH, N_FFT, N_FRAMES, N_SAMPLES, log_mel_spectrogram, mel_filters, pad_or_trim
from needs import require_module

torch = require_module("torch")

# Values read from openai/whisper's whisper/assets/mel_filters.npz (librosa 0.8 output, float32).
WHISPER_FILTER_VALUES = {
    80: {(0, 1): 0.02486259490251541, (10, 10): 0.01990821771323681, (10, 11): 0.004954374860972166,
         (40, 43): 0.014735566452145576, (40, 44): 0.006518189795315266, (60, 93): 0.006591092795133591,
         (60, 94): 0.004660011734813452, (79, 192): 0.0031647118739783764, (79, 193): 0.003141313325613737},
    128: {(0, 1): 0.012373986653983593, (10, 6): 0.011289183981716633, (10, 7): 0.0010848019737750292,
          (40, 24): 0.040376365184783936, (40, 25): 0.0, (60, 39): 0.021224552765488625,
          (127, 195): 0.005041601601988077, (127, 196): 0.004457120783627033},
}
WHISPER_FILTER_SUMS = {80: 1.999024092387117, 128: 3.1909855409403463}


def whisper_reference(audio: np.ndarray, n_mels: int, padding: int = 0) -> np.ndarray:
    """openai/whisper's log_mel_spectrogram, line for line, in torch."""
    x = torch.from_numpy(audio.astype(np.float32))
    if padding:
        x = torch.nn.functional.pad(x, (0, padding))
    stft = torch.stft(x, N_FFT, HOP_LENGTH, window=torch.hann_window(N_FFT), return_complex=True)
    magnitudes = stft[..., :-1].abs() ** 2
    mel = torch.from_numpy(np.array(mel_filters(n_mels))) @ magnitudes
    log_spec = torch.clamp(mel, min=1e-10).log10()
    log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
    return ((log_spec + 4.0) / 4.0).numpy()


def speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    """Voiced harmonics with a wandering pitch, noise bursts, and a stretch of digital silence."""
    rng = np.random.default_rng(seed)
    n = int(seconds * 16000)
    t = np.arange(n) / 16000
    f0 = 120 + 40 * np.sin(2 * np.pi * 0.3 * t)
    phase = 2 * np.pi * np.cumsum(f0) / 16000
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = (np.sin(2 * np.pi * 2.5 * t) > 0).astype(float)
    x = 0.2 * voiced * envelope + 0.05 * rng.standard_normal(n) * (1 - envelope)
    x[n // 3 : n // 3 + 16000] = 0.0
    return x.astype(np.float32)


@pytest.mark.parametrize("n_mels", [80, 128])
def test_mel_filters_equal_whispers_published_filterbank(n_mels):
    f = mel_filters(n_mels)
    assert f.shape == (n_mels, 201) and f.dtype == np.float32
    for (i, j), value in WHISPER_FILTER_VALUES[n_mels].items():
        assert f[i, j] == pytest.approx(value, rel=1e-5, abs=1e-9), (i, j)
    assert float(f.astype(np.float64).sum()) == pytest.approx(WHISPER_FILTER_SUMS[n_mels], rel=1e-6)
    assert (f >= 0).all()


@pytest.mark.parametrize("n_mels", [80, 128])
@pytest.mark.parametrize("seconds,padding", [(30.0, 0), (7.3, N_SAMPLES), (1.01, 0)])
def test_log_mel_matches_whisper_torch_reference(n_mels, seconds, padding):
    audio = speechlike(seconds, seed=n_mels)
    ours = log_mel_spectrogram(audio, n_mels=n_mels, padding=padding)
    ref = whisper_reference(audio, n_mels, padding)
    assert ours.dtype == np.float32
    assert ours.shape == ref.shape == (n_mels, (audio.size + padding) // HOP_LENGTH)
    np.testing.assert_allclose(ours, ref, atol=1e-4, rtol=0)


def test_digital_silence_is_the_floor_value():
    mel = log_mel_spectrogram(np.zeros(16000, dtype=np.float32))
    assert mel.shape == (80, 100)
    np.testing.assert_allclose(mel, (-10.0 + 4.0) / 4.0, atol=1e-6)


def test_dynamic_range_is_limited_to_8_decades():
    mel = log_mel_spectrogram(speechlike(5.0))
    assert mel.max() - mel.min() <= 2.0 + 1e-6  # 8 in log10 units, divided by 4


@pytest.mark.parametrize("n_samples", [0, 159, 160, 161, 16000, 16001])
def test_frame_count_is_samples_over_hop(n_samples):
    mel = log_mel_spectrogram(np.full(n_samples, 0.01, dtype=np.float32))
    assert mel.shape == (80, n_samples // HOP_LENGTH)


def test_pad_or_trim():
    mel = np.ones((80, 1234), dtype=np.float32)
    padded = pad_or_trim(mel)
    assert padded.shape == (80, N_FRAMES)
    assert (padded[:, :1234] == 1).all() and (padded[:, 1234:] == 0).all()
    long = np.arange(80 * 3500, dtype=np.float32).reshape(80, 3500)
    np.testing.assert_array_equal(pad_or_trim(long), long[:, :N_FRAMES])
    assert pad_or_trim(np.ones(100), N_SAMPLES).shape == (N_SAMPLES,)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="1-D"):
        log_mel_spectrogram(np.zeros((2, 16000), dtype=np.float32))


def test_constants_are_consistent():
    assert features.N_SAMPLES == 480000 and features.N_FRAMES == 3000
    assert features.FRAMES_PER_SECOND == 100 and features.CHUNK_LENGTH * features.FRAMES_PER_SECOND == N_FRAMES


def test_thirty_seconds_are_vectorised_not_looped():
    # a per-frame Python loop takes seconds; numpy takes ~30 ms. The bound is loose for shared CI machines.
    audio = speechlike(30.0)
    log_mel_spectrogram(audio)
    start = time.perf_counter()
    for _ in range(5):
        log_mel_spectrogram(audio)
    per_call_s = (time.perf_counter() - start) / 5
    assert per_call_s < 0.5, f"log-mel of 30 s took {per_call_s * 1000:.0f} ms"

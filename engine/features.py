"""Whisper's log-mel spectrogram in numpy, equal to openai/whisper's ``audio.py`` within float tolerance.

Steps, as Whisper does them: centred STFT (reflect padding of N_FFT // 2 on both ends, periodic Hann
window of N_FFT samples, hop HOP_LENGTH), the last frame dropped, power spectrum, Slaney-style mel
filterbank, log10 clamped at 1e-10, dynamic range limited to 8 (x >= max - 8), then (x + 4) / 4.
"""

from __future__ import annotations

import functools

import numpy as np

SAMPLE_RATE = 16000
N_FFT = 400  # 25 ms window
HOP_LENGTH = 160  # 10 ms hop
CHUNK_LENGTH = 30  # seconds in one Whisper window
N_SAMPLES = CHUNK_LENGTH * SAMPLE_RATE  # 480000 samples in a window
N_FRAMES = N_SAMPLES // HOP_LENGTH  # 3000 mel frames in a window
FRAMES_PER_SECOND = SAMPLE_RATE // HOP_LENGTH  # 100 frames, 10 ms each
N_FREQS = N_FFT // 2 + 1  # 201 rfft bins


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default, htk=False): linear below 1 kHz, log above."""
    f = np.asarray(f, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    with np.errstate(divide="ignore"):
        log_part = min_log_mel + np.log(np.maximum(f, 1e-300) / min_log_hz) / logstep
    return np.where(f >= min_log_hz, log_part, f / f_sp)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), m * f_sp)


@functools.lru_cache(maxsize=4)
def mel_filters(n_mels: int) -> np.ndarray:
    """[n_mels, 201] float32: librosa.filters.mel(sr=16000, n_fft=400, n_mels=n_mels), i.e. Slaney mel
    scale from 0 Hz to 8 kHz, triangles normalised to equal area ("slaney" norm).

    The returned array is shared and read-only."""
    if n_mels <= 0:
        raise ValueError(f"n_mels must be positive, got {n_mels}")
    fft_hz = np.linspace(0.0, SAMPLE_RATE / 2, N_FREQS)
    band_hz = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(SAMPLE_RATE / 2), n_mels + 2))
    widths = np.diff(band_hz)  # [n_mels + 1]
    ramps = band_hz[:, None] - fft_hz[None, :]  # [n_mels + 2, 201]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (band_hz[2:] - band_hz[:-2]))[:, None]
    out = weights.astype(np.float32)
    out.flags.writeable = False
    return out


@functools.lru_cache(maxsize=1)
def _hann() -> np.ndarray:
    """Periodic Hann window (torch.hann_window's default), float32."""
    n = np.arange(N_FFT, dtype=np.float64)
    w = (0.5 - 0.5 * np.cos(2 * np.pi * n / N_FFT)).astype(np.float32)
    w.flags.writeable = False
    return w


def log_mel_spectrogram(audio: np.ndarray, n_mels: int = 80, padding: int = 0) -> np.ndarray:
    """16 kHz mono audio [samples] -> normalised log-mel [n_mels, (samples + padding) // 160], float32.

    ``padding`` zeros are appended first (Whisper pads N_SAMPLES so the last window is complete).
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"log_mel_spectrogram takes 1-D audio, got shape {audio.shape}")
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    if padding:
        audio = np.concatenate([audio, np.zeros(padding, dtype=np.float32)])
    n_frames = audio.size // HOP_LENGTH  # the centred STFT has one more; Whisper drops it
    if n_frames == 0:
        return np.zeros((n_mels, 0), dtype=np.float32)
    power = _power_spectrum(audio, n_frames)  # [frames, 201]
    mel = mel_filters(n_mels) @ power.T  # [n_mels, frames]
    log_spec = np.log10(np.maximum(mel, 1e-10))
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    return ((log_spec + 4.0) / 4.0).astype(np.float32, copy=False)


def _power_spectrum(audio: np.ndarray, n_frames: int) -> np.ndarray:
    """|STFT|^2 of the first n_frames centred frames, [frames, 201] float32."""
    half = N_FFT // 2
    mode = "reflect" if audio.size > half else "constant"  # torch refuses reflect on so short an input
    padded = np.pad(audio, half, mode=mode)
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP_LENGTH][:n_frames]
    spectrum = np.fft.rfft(frames * _hann(), axis=-1)  # [frames, 201] complex
    return (spectrum.real**2 + spectrum.imag**2).astype(np.float32, copy=False)


def pad_or_trim(x: np.ndarray, frames: int = N_FRAMES, axis: int = -1) -> np.ndarray:
    """Zero-pad or cut ``x`` along ``axis`` to ``frames`` (a mel [n_mels, frames] by default;
    also audio with frames=N_SAMPLES)."""
    x = np.asarray(x)
    n = x.shape[axis]
    if n > frames:
        return np.take(x, np.arange(frames), axis=axis)
    if n < frames:
        widths = [(0, 0)] * x.ndim
        widths[axis] = (0, frames - n)
        return np.pad(x, widths)
    return x

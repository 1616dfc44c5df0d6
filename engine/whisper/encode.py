"""The one recipe for turning audio into encoder states: log-mel of the audio, zero frames after it, encode.

Live recognition, live speech translation and file speech translation all call ``encode_audio``, so a
stretch of audio is encoded the same way wherever it is read, and an encoder output made for the
transcript can be decoded again for its translation without a second encoder pass.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from engine.features import HOP_LENGTH, N_FRAMES, log_mel_spectrogram
from engine.whisper.decoding import DecodeOptions
from engine.whisper.loops import deloop_text


@dataclasses.dataclass(frozen=True)
class EncodedAudio:
    states: np.ndarray  # [1, encoder positions, d_model]
    frames: int  # log-mel frames of real audio; the rest the encoder saw was padding
    duration_s: float  # seconds of audio encoded


def encode_audio(model, audio: np.ndarray, pad_s: float | None = 2.0) -> EncodedAudio | None:
    """Encode ``audio`` (16 kHz mono, ≤ 30 s − pad_s; longer is cut to its end) followed by ``pad_s``
    of zero log-mel frames, or padded to Whisper's 30 s window when ``pad_s`` is None.

    Zero frames after the audio, as faster-whisper pads a short window (the log-mel of silent samples,
    as openai-whisper pads, measured no better: WER 5.1 % vs 4.8 % on a 2.3 min English stream). Without
    any padding the decoder, seeing speech run to the last frame, does not end and loops (5 s of
    speech → 224 looping tokens); with 2 s it ends, and the text equals the 30 s window's at a third
    to a fifth of the encoder time. Returns None for less than one frame of audio.
    """
    keep = N_FRAMES * HOP_LENGTH - (0 if pad_s is None else round(pad_s * 100) * HOP_LENGTH)
    audio = np.asarray(audio, np.float32)[-max(keep, HOP_LENGTH):]
    frames = audio.size // HOP_LENGTH
    if frames < 1:
        return None
    mel = log_mel_spectrogram(np.concatenate([audio, np.zeros(HOP_LENGTH, np.float32)]),
                              model.pack.dims.n_mels)[:, :frames]
    pad_to = N_FRAMES if pad_s is None else frames + round(pad_s * 100)
    mel = np.pad(mel, ((0, 0), (0, pad_to - frames)))
    return EncodedAudio(model.encode(mel), frames, audio.size / 16000)


def translate_encoded(model, encoded: EncodedAudio, source: str | None, beam_size: int = 1) -> str:
    """English text for encoded speech in ``source`` (Whisper's translate task), from states that may
    already have been decoded for the transcript."""
    # No no-speech skip: the caller transcribed words in this audio already (a skipped translation would
    # leave a sentence without one).
    options = DecodeOptions(task="translate", language=source, beam_size=beam_size, max_fallbacks=1,
                            without_timestamps=True, no_speech_threshold=None,
                            sample_len=min(224, 10 + encoded.frames // 12))  # real speech ≈ 8 tokens/s
    result = model.decode_window(encoded.states, options, num_frames=encoded.frames)
    return "" if result.skipped else deloop_text(result.text)


def speech_to_english(model, audio: np.ndarray, source: str | None, pad_s: float = 2.0, beam_size: int = 1) -> str:
    """One stretch of speech (≤ 30 s − pad_s; longer is cut to its end) → English text."""
    encoded = encode_audio(model, audio, pad_s)
    return "" if encoded is None else translate_encoded(model, encoded, source, beam_size)

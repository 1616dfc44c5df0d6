"""Long-form transcription: 30 s windows with seek, as openai/whisper and faster-whisper do it.

Each window's log-mel is computed from the audio under it (the file is decoded 30 s at a time and
only the audio from the current window on is held, so a 2-hour file needs a few MB). The window
is encoded, decoded with the previous windows' text as prompt, cut into segments at its timestamp
pairs, and the next window starts where the last complete segment ended.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.errors import CancelledError
from engine.glossary import Glossary, for_pack
from engine.features import HOP_LENGTH, N_FRAMES, N_SAMPLES, SAMPLE_RATE, log_mel_spectrogram
from engine.whisper.decoding import DecodeOptions
from engine.whisper.results import Segment, Transcript

if TYPE_CHECKING:
    from engine.whisper.model import WhisperModel

log = logging.getLogger(__name__)

# With encoder_frames="audio", a short tail (the last 0.2 s of a file) encoded alone makes the model
# repeat its prompt; padding such windows to 10 s keeps them honest at a third of a full encode.
_MIN_AUDIO_FRAMES = 1000
_CONTEXT = 2 * HOP_LENGTH  # samples of real audio kept on each side of a window (≥ N_FFT / 2)


@dataclasses.dataclass(frozen=True)
class TranscribeOptions:
    """How a file is transcribed. Defaults are faster-whisper's (beam 5) and Whisper's guards."""

    language: str | None = None  # spoken language code; None: detect from the first 30 s
    task: str = "transcribe"  # or "translate": speech in any language → English text
    beam_size: int = 5  # 1 = greedy
    best_of: int = 5  # samples per window when falling back to temperature > 0
    patience: float = 1.0
    length_penalty: float | None = None  # None: sum logprob / length
    temperatures: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    compression_ratio_threshold: float | None = 2.4
    log_prob_threshold: float | None = -1.0
    no_speech_threshold: float | None = 0.6
    condition_on_previous_text: bool = True  # prompt each window with the text so far
    prompt_reset_on_temperature: float = 0.5  # a window decoded hotter than this does not prompt the next
    initial_prompt: str | None = None  # text (names, spellings) to prompt the first window with
    # The user's words (engine.glossary): with glossary_prompt every window is primed with the list of terms
    # (before the text so far); glossary_bias is the logit bonus on each token that continues a term
    # (DecodeOptions.bias_terms; 0: none). Measured in docs/results/glossary.md.
    glossary: Glossary | None = None
    glossary_prompt: bool = True
    glossary_bias: float = 2.0
    glossary_first_bias: float | None = None  # a term's first token's bonus (None: glossary_bias)
    # The terms the model's pack learned (Learn these words) are neither prompted nor biased (engine.glossary.
    # for_pack): the learned model is better without them. True keeps them (bench/learn_words.py measures both).
    glossary_keep_learned: bool = False
    prefix: str | None = None  # text the first window's output must start with
    word_timestamps: bool = False
    without_timestamps: bool = False
    max_initial_timestamp: float | None = 1.0
    suppress_tokens: tuple[int, ...] = (-1,)
    suppress_blank: bool = True
    encoder_frames: str = "full"  # "full": 30 s windows padded as Whisper; "audio": encode only the audio
    max_fallbacks: int | None = None  # bound the temperature fallback (None: all temperatures)
    window_time_budget_s: float | None = None  # wall-time cap per window (live use); None: none
    # A window whose peak stays below this (dBFS) is silence: skipped without decoding, because
    # Whisper (and faster-whisper without VAD) hallucinates "You" on digital silence. None: decode all.
    silence_threshold_db: float | None = -60.0
    # A window whose sound (first to last sample above that threshold) lasts less than this holds no word — a
    # syllable takes ~0.1 s — and is skipped too: Whisper wrote "I'm sorry." for the first 50 ms of a spoken
    # sentence. None: decode any sound.
    min_sound_s: float | None = 0.1

    def __post_init__(self) -> None:
        if self.encoder_frames not in ("full", "audio"):
            raise ValueError(f"encoder_frames must be 'full' or 'audio', got {self.encoder_frames!r}")
        if self.min_sound_s is not None and not 0 <= self.min_sound_s < 30:
            raise ValueError(f"min_sound_s must be from 0 to 30 s, or None; got {self.min_sound_s}")
        if self.initial_prompt is not None and not isinstance(self.initial_prompt, str):
            raise ValueError("initial_prompt must be text or None")
        if self.glossary is not None and not isinstance(self.glossary, Glossary):
            raise ValueError(f"glossary must be an engine.glossary.Glossary or None, got {type(self.glossary)}")
        self.decode_options(self.language)  # DecodeOptions validates the shared fields

    def decode_options(self, language: str | None, prefix: str | None = None) -> DecodeOptions:
        return DecodeOptions(
            task=self.task, language=language, temperatures=tuple(self.temperatures), beam_size=self.beam_size,
            best_of=self.best_of, patience=self.patience, length_penalty=self.length_penalty,
            compression_ratio_threshold=self.compression_ratio_threshold,
            log_prob_threshold=self.log_prob_threshold, no_speech_threshold=self.no_speech_threshold,
            max_fallbacks=self.max_fallbacks, time_budget_s=self.window_time_budget_s, prefix=prefix,
            suppress_tokens=tuple(self.suppress_tokens), suppress_blank=self.suppress_blank,
            without_timestamps=self.without_timestamps, max_initial_timestamp=self.max_initial_timestamp,
            word_timestamps=self.word_timestamps, bias_terms=self.glossary.words if self.glossary else (),
            bias_logit=self.glossary_bias, bias_first_logit=self.glossary_first_bias)


def glossary_prompt_tokens(model: WhisperModel, glossary: Glossary | None, max_tokens: int) -> list[int]:
    """The glossary's prompt, as many whole terms as fit in ``max_tokens`` (the rest are still biased)."""
    if not glossary:
        return []
    for n in range(len(glossary.terms), 0, -1):
        tokens = model.encode_text(Glossary(glossary.terms[:n]).prompt())
        if len(tokens) <= max_tokens:
            if n < len(glossary.terms):
                log.warning("the glossary's prompt holds its first %d of %d terms (a prompt is at most %d tokens)",
                            n, len(glossary.terms), max_tokens)
            return tokens
    return []


class AudioWindows:
    """Samples [start, start + n) of a stream of chunks, holding only what lies at or after the
    latest start asked for (windows only move forward)."""

    def __init__(self, chunks: Iterator[np.ndarray]):
        self._chunks = chunks
        self._buf = np.zeros(0, dtype=np.float32)
        self._start = 0  # sample index of _buf[0]
        self.exhausted = False
        self.samples_seen = 0

    def get(self, start: int, n: int) -> np.ndarray:
        """Up to n samples from start (fewer at the end of the stream)."""
        if start < self._start:
            raise ValueError(f"window start {start} is before the retained audio ({self._start})")
        if start > self._start:
            self._buf = self._buf[start - self._start:]
            self._start = start
        pieces = [self._buf]
        held = self._buf.size
        while held < n and not self.exhausted:
            try:
                chunk = np.asarray(next(self._chunks), dtype=np.float32)
            except StopIteration:
                self.exhausted = True
                break
            pieces.append(chunk)
            held += chunk.size
            self.samples_seen += chunk.size
        if len(pieces) > 1:
            self._buf = np.concatenate(pieces)
        return self._buf[:n]


def _open(audio: np.ndarray | str | Path) -> tuple[Iterator[np.ndarray], float]:
    """(chunks of 16 kHz mono float32, expected duration in seconds)."""
    if isinstance(audio, np.ndarray):
        if audio.ndim != 1:
            raise ValueError(f"audio must be 16 kHz mono samples (1-D), got shape {audio.shape}")
        return iter([audio.astype(np.float32, copy=False)]), audio.size / SAMPLE_RATE
    from engine.audio.decode import iter_audio, probe

    info = probe(audio)
    return iter_audio(audio, chunk_s=30.0), info.duration_s


def _report(progress: Callable[[float, float], None] | None, seek: int, expected_s: float,
            source: AudioWindows) -> None:
    if progress is not None:
        total = max(expected_s, source.samples_seen / SAMPLE_RATE)
        progress(min(seek / 100, total), total)


def transcribe(model: WhisperModel, audio: np.ndarray | str | Path, options: TranscribeOptions,
               progress: Callable[[float, float], None] | None = None,
               cancel: threading.Event | None = None) -> Transcript:
    language = model.check_language(options.language)
    if options.glossary and not options.glossary_keep_learned:
        options = dataclasses.replace(options, glossary=for_pack(options.glossary, model.pack))
    chunks, expected_s = _open(audio)
    source = AudioWindows(chunks)
    n_mels = model.pack.dims.n_mels
    tokenizer = model.tokenizer

    # The glossary takes at most a quarter of the decoder's context, the text so far the rest of the prompt.
    prompt_budget = model.pack.dims.n_text_ctx // 2 - 1
    glossary_tokens = glossary_prompt_tokens(model, options.glossary if options.glossary_prompt else None,
                                             model.pack.dims.n_text_ctx // 4)
    all_tokens: list[int] = []
    if options.initial_prompt:
        all_tokens.extend(model.encode_text(options.initial_prompt))
    prompt_reset_since = 0
    segments: list[Segment] = []
    language_probability: float | None = None
    last_speech_s = 0.0
    seek = 0  # in mel frames
    first = True
    while True:
        if cancel is not None and cancel.is_set():
            raise CancelledError(f"transcription cancelled at {seek / 100:.1f} s")
        # The window's audio with real audio around it, so its edge frames are the frames a mel of
        # the whole file would have; the file's end gets faster-whisper's 160 zero samples.
        lead = min(_CONTEXT, seek * HOP_LENGTH)
        samples = source.get(seek * HOP_LENGTH - lead, lead + N_SAMPLES + _CONTEXT)
        segment_frames = min(N_FRAMES, (samples.size - lead) // HOP_LENGTH)
        if segment_frames <= 0:
            break
        if samples.size < lead + N_SAMPLES + _CONTEXT:
            samples = np.concatenate([samples, np.zeros(HOP_LENGTH, np.float32)])
        first_frame = lead // HOP_LENGTH
        if options.silence_threshold_db is not None:
            window_audio = samples[lead:lead + segment_frames * HOP_LENGTH]
            sound = np.flatnonzero(np.abs(window_audio) >= 10 ** (options.silence_threshold_db / 20))
            sound_s = (sound[-1] - sound[0] + 1) / SAMPLE_RATE if sound.size else 0.0
            if sound_s == 0.0 or options.min_sound_s is not None and sound_s < options.min_sound_s:
                log.debug("window at %.2f s is silent (%.3f s of sound); skipped", seek / 100, sound_s)
                seek += segment_frames
                _report(progress, seek, expected_s, source)
                continue
        mel = log_mel_spectrogram(samples, n_mels)[:, first_frame:first_frame + segment_frames]  # [n_mels, frames]
        pad_to = N_FRAMES if options.encoder_frames == "full" else _MIN_AUDIO_FRAMES
        if segment_frames < pad_to:
            mel = np.pad(mel, ((0, 0), (0, pad_to - segment_frames)))  # zeros, as Whisper pads
        states = model.encode(mel)
        time_offset = seek * HOP_LENGTH / SAMPLE_RATE
        decode_options = options.decode_options(language, options.prefix if first else None)
        try:  # (a cancel stops the search at its next token)
            history = all_tokens[prompt_reset_since:]
            history = history[max(0, len(history) - (prompt_budget - len(glossary_tokens))):]
            result = model.decode_window(states, decode_options, glossary_tokens + history,
                                         num_frames=segment_frames, time_offset_s=time_offset,
                                         last_speech_s=last_speech_s, cancel=cancel)
        except CancelledError as e:
            raise CancelledError(f"transcription cancelled at {seek / 100:.1f} s") from e
        if language is None:
            language = result.language
            if result.language_probs:
                language_probability = result.language_probs[language]
            log.info("detected language %s (p=%.2f)", language, language_probability or 0.0)
        first = False
        for seg in result.segments:
            segments.append(dataclasses.replace(seg, id=len(segments)))
            all_tokens.extend(seg.tokens)
            if seg.words:
                last_speech_s = seg.end_s
        if not result.skipped and (not options.condition_on_previous_text
                                   or result.temperature > options.prompt_reset_on_temperature):
            prompt_reset_since = len(all_tokens)
        seek += result.consumed_frames
        _report(progress, seek, expected_s, source)
    duration = source.samples_seen / SAMPLE_RATE
    if progress is not None:
        progress(duration, duration)
    if language is None and not tokenizer.multilingual:
        language = "en"
    return Transcript(segments=tuple(segments), language=language,
                      language_probability=language_probability if options.language is None else None,
                      duration_s=duration)

"""What the streaming recogniser (engine.live.recognizer) is given and what it hands the translation stage:

- the recogniser function, any callable ``(audio, prompt, language, beam_size=None, encoded=None) ->
  Hypothesis`` (``Recognise``): ``WhisperRecognise`` adapts a Whisper model to it (encode the buffer, decode
  with word timestamps, the glossary and the committed text as prompt); tests script one;
- ``LevelGate``, the gate without a VAD, and ``AudioHistory``, the last seconds of the stream kept for speech
  translation;
- ``FinalSentence``, a finished sentence for the translation stage.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

import numpy as np

from engine.events import Word
from engine.features import SAMPLE_RATE
from engine.glossary import for_pack
from engine.live.options import LiveOptions
from engine.whisper.decoding import DecodeOptions
from engine.whisper.encode import EncodedAudio, encode_audio
from engine.whisper.transcribe import glossary_prompt_tokens

_TOKENS_PER_FRAME = 0.12  # 12 tokens per second of audio, timestamps included
HISTORY_S = 28.0  # audio kept for speech translation (a sentence longer than this is cut to its end)


@dataclasses.dataclass(frozen=True)
class Hypothesis:
    words: tuple[Word, ...]  # times relative to the start of the decoded audio
    segment_ends_s: tuple[float, ...] = ()  # same time base
    language: str | None = None  # what the recogniser heard (or was told)
    encoded: Any = None  # the encoder output it decoded; the translation stage may decode it again
    avg_logprob: float | None = None  # the decoder's mean token log-probability (how sure it was)


class Recognise(Protocol):
    # beam_size None: the recogniser's own; encoded: an earlier Hypothesis.encoded of this same audio, decoded
    # again instead of encoding the audio anew
    def __call__(self, audio: np.ndarray, prompt: str, language: str | None,
                 beam_size: int | None = None, encoded: Any = None) -> Hypothesis: ...


@dataclasses.dataclass(frozen=True)
class FinalSentence:
    """A finished sentence, for the translation stage (front-ends get ``Committed`` and ``SentenceEnd``)."""

    segment_id: int  # of its last Committed fragment: the translation is shown with it
    text: str
    start_s: float
    end_s: float
    language: str | None
    encoded: Any = None  # encoder output of exactly this sentence's audio (one decode held it alone), or None
    audio: np.ndarray | None = None  # its audio (± margins) when speech translation may need it and encoded is None


class WhisperRecognise:
    """The live decode of a Whisper model: the buffered audio encoded as it is (plus padding, or the 30 s
    window), decoded with word timestamps, the committed text as prompt, bounded fallback and guards."""

    def __init__(self, model, options: LiveOptions):
        self.model = model
        self.options = options
        # (without the terms the model's pack has learned: prompting those again made them worse)
        self._terms = for_pack(options.glossary, model.pack)
        self._glossary = glossary_prompt_tokens(model, self._terms, model.pack.dims.n_text_ctx // 4)
        self._first: tuple[Any, int] | None = None  # (encoded, tokens) of the last decode that encoded its audio

    def __call__(self, audio: np.ndarray, prompt: str, language: str | None,
                 beam_size: int | None = None, encoded: EncodedAudio | None = None) -> Hypothesis:
        opts = self.options
        if encoded is None:
            encoded = encode_audio(self.model, audio, None if opts.encoder_frames == "full" else opts.encoder_pad_s)
        if encoded is None:
            return Hypothesis(())
        # Real speech is < 8 tokens/s; a short buffer that starts to loop stops here.
        sample_len, fallbacks = min(224, 16 + int(encoded.frames * _TOKENS_PER_FRAME)), opts.max_fallbacks
        # A decode of an encoder output decoded before is a search to mend that decode's words (the finalising
        # decode searched with the beam): it says about as much, so it stops at twice the first decode's tokens,
        # and it gets no fallback — where the beam loops or fails the guards the first decode stands. Unbounded,
        # a beam that loops ran to sample_len and then fell back to sampling: 3–4× the greedy decode's time
        # (measured on 4 s buffers ending mid-word), which the in-time rule then took for what every search costs.
        again = self._first is not None and encoded is not None and self._first[0] is encoded
        if again:
            sample_len, fallbacks = min(sample_len, 2 * self._first[1] + 8), 0
        decode = DecodeOptions(task=opts.task, language=language, beam_size=beam_size or opts.beam_size,
                               max_fallbacks=fallbacks, word_timestamps=True,
                               no_speech_threshold=opts.no_speech_threshold,
                               log_prob_threshold=opts.log_prob_threshold,
                               compression_ratio_threshold=opts.compression_ratio_threshold,
                               sample_len=sample_len, bias_terms=self._terms.words if self._terms else ())
        # As a file's windows are primed: the glossary's terms first (as many as fit in a quarter of the decoder's
        # context), then the prompt and the committed text, cut from the front to what is left.
        history = self.model.encode_text(" ".join(filter(None, [opts.initial_prompt, prompt])))
        history = history[max(0, len(history) - (self.model.pack.dims.n_text_ctx // 2 - 1 - len(self._glossary))):]
        result = self.model.decode_window(encoded.states, decode, self._glossary + history,
                                          num_frames=encoded.frames)
        if not again:
            self._first = (encoded, len(result.tokens))
        elif _failed(result, sample_len, opts):
            return Hypothesis((), language=result.language, encoded=encoded)  # nothing better than the first
        if result.skipped:
            return Hypothesis((), language=result.language, encoded=encoded)
        return Hypothesis(tuple(w for seg in result.segments for w in seg.words),
                          tuple(s.end_s for s in result.segments), result.language, encoded, result.avg_logprob)


def _failed(result, sample_len: int, opts: LiveOptions) -> bool:
    """A search that ran out of tokens (it looped) or fails the guards a fallback would have been for."""
    return (len(result.tokens) >= sample_len
            or (opts.compression_ratio_threshold is not None
                and result.compression_ratio > opts.compression_ratio_threshold)
            or (opts.log_prob_threshold is not None and result.avg_logprob < opts.log_prob_threshold))


class LevelGate:
    """The gate without a VAD: a piece is speech when its peak reaches ``threshold_db`` (None: always)."""

    def __init__(self, threshold_db: float | None):
        self.threshold = None if threshold_db is None else 10 ** (threshold_db / 20)
        self.silence_s = 0.0  # how long the input has been silent, up to now
        self.speech_s = 0.0  # how much of it was speech, since the start

    def update(self, chunk: np.ndarray) -> bool:
        speech = self.threshold is None or (chunk.size > 0 and float(np.max(np.abs(chunk))) >= self.threshold)
        self.silence_s = 0.0 if speech else self.silence_s + chunk.size / SAMPLE_RATE
        self.speech_s += chunk.size / SAMPLE_RATE if speech else 0.0
        return speech


class AudioHistory:
    """The last ``seconds`` of the stream, addressable by absolute time (a ring: appending copies a piece)."""

    def __init__(self, seconds: float = HISTORY_S):
        self._ring = np.zeros(int(seconds * SAMPLE_RATE), np.float32)
        self._end = 0  # absolute sample index just after the newest sample

    def append(self, x: np.ndarray) -> None:
        x = x[-self._ring.size:]
        at = self._end % self._ring.size
        first = min(x.size, self._ring.size - at)
        self._ring[at:at + first] = x[:first]
        self._ring[:x.size - first] = x[first:]
        self._end += x.size

    def slice(self, start_s: float, end_s: float) -> np.ndarray:
        oldest = max(0, self._end - self._ring.size)
        a = max(int(start_s * SAMPLE_RATE), oldest)
        b = max(min(int(end_s * SAMPLE_RATE), self._end), a)
        idx = np.arange(a, b) % self._ring.size
        return self._ring[idx].copy()

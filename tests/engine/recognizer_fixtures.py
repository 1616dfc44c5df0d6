"""A scripted recogniser and a scripted gate for the streaming recogniser's tests (test_recognizer.py,
test_recognizer_final_beam.py): no model, no thread, no clock.

The test audio carries its own clock: sample i has the value i, so the scripted recogniser knows which
stretch of the stream it was given and answers with the words that lie wholly inside it, as a perfect
recogniser would; the scripted gate says speech wherever the script has a word.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from engine.events import Committed, Word
from engine.live.options import LiveOptions
from engine.live.recognise import Hypothesis
from engine.live.recognizer import StreamingRecognizer

SR = 16000


def script(*phrases: tuple[float, str], word_s: float = 0.3) -> list[Word]:
    """Words on the stream's clock: each phrase starts at its time, its words follow each other."""
    words = []
    for start, text in phrases:
        for i, token in enumerate(text.split()):
            words.append(Word(start + i * word_s, start + (i + 1) * word_s - 0.02, " " + token))
    return words


class ScriptedRecognise:
    def __init__(self, words: list[Word]):
        self.words = words
        self.calls: list[tuple[float, float]] = []  # (start_s, end_s) of each decoded buffer
        self.prompts: list[str] = []
        self.beams: list[int | None] = []  # the beam each decode asked for (None: the options' beam_size)
        self.reused: list[bool] = []  # whether each decode was handed an earlier decode's encoder output

    def __call__(self, audio: np.ndarray, prompt: str, language: str | None,
                 beam_size: int | None = None, encoded=None) -> Hypothesis:
        start, end = float(audio[0]) / SR, (float(audio[-1]) + 1) / SR
        if encoded is not None:
            assert encoded == ("encoder output", start, end)  # decoded again: the same audio's encoder output
        self.calls.append((start, end))
        self.prompts.append(prompt)
        self.beams.append(beam_size)
        self.reused.append(encoded is not None)
        heard = [dataclasses.replace(w, start_s=w.start_s - start, end_s=w.end_s - start)
                 for w in self.words if w.start_s >= start - 0.05 and w.end_s <= end - 0.05]
        return Hypothesis(tuple(heard), (), "en", encoded=("encoder output", start, end))


class TimedRecognise(ScriptedRecognise):
    """A scripted recogniser on a clock of its own: each decode moves it on by what it 'takes' (greedy_s, or
    search_s for a decode with a beam), and nothing else does."""

    def __init__(self, words: list[Word], greedy_s: float, search_s: float = 0.0):
        super().__init__(words)
        self.greedy_s, self.search_s = greedy_s, search_s
        self.time_s = 0.0

    def now(self) -> float:
        return self.time_s

    def __call__(self, audio, prompt, language, beam_size=None, encoded=None):
        self.time_s += self.search_s if beam_size and beam_size > 1 else self.greedy_s
        return super().__call__(audio, prompt, language, beam_size, encoded)


class ScriptedGate:
    """Speech wherever a scripted word is (gaps between words under 0.1 s count as speech)."""

    def __init__(self, words: list[Word]):
        self.spans = [(w.start_s, w.end_s + 0.1) for w in words]
        self.silence_s = 0.0
        self.speech_s = 0.0
        self._last_speech_s = 0.0

    def update(self, chunk: np.ndarray) -> bool:
        start, end = float(chunk[0]) / SR, (float(chunk[-1]) + 1) / SR
        speech = [min(e, end) for s, e in self.spans if s < end and e > start]
        self.speech_s += sum(min(e, end) - max(s, start) for s, e in self.spans if s < end and e > start)
        if speech:
            self._last_speech_s = max(self._last_speech_s, max(speech))
        self.silence_s = max(0.0, end - self._last_speech_s)
        return bool(speech)


def run(words: list[Word], total_s: float, chunk_s: float = 0.1, recognise=None, **options):
    """Feed the stream chunk by chunk; return (recogniser, [(audio time when it came out, event)], scripted)."""
    recognise = recognise or ScriptedRecognise(words)
    opts = LiveOptions(language="en", **options)
    rec = StreamingRecognizer(recognise, opts, ScriptedGate(words), realtime=False, keep_history=True,
                              timer=lambda: 0.0, clock=lambda: 0.0)
    out = []
    n = int(round(chunk_s * SR))
    for first in range(0, int(total_s * SR), n):
        chunk = np.arange(first, first + n, dtype=np.float32)
        out += [((first + n) / SR, e) for e in rec.feed(chunk)]
    out += [(total_s, e) for e in rec.flush()]
    return rec, out, recognise


def committed_text(out) -> str:
    return "".join(e.text and " " + e.text for _, e in out if isinstance(e, Committed)).split() and \
        " ".join(e.text for _, e in out if isinstance(e, Committed))

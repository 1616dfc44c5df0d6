"""Translation of committed live text, on a thread of its own so it never holds up recognition.

Committed fragments are gathered into sentences (a sentence end, a pause, or ``max_chars``). Each
finished sentence is translated once — committed translations never change — and published as a
``Translated`` event carrying the segment id of the sentence's last committed fragment, so the
source and its translation line up in the window and in bilingual subtitles.

The tentative tail (with the committed words of its unfinished sentence) is translated as a *draft*
(``Translated(draft=True)``, keyed by the tentative segment's id) at most every ``draft_interval_s``,
only when no committed sentence is waiting, and only the newest tail: a draft never delays a final
translation, and one that would arrive after its segment was committed is dropped.

Into English the translator is Whisper itself (speech → English text, the cross-modal path): the
sentence's audio is encoded again and decoded with the ``translate`` task. Other targets need a
text-translation stage (``text_translator``: any callable ``(text, source, target) -> str``).
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Callable

import numpy as np

from engine.events import Translated, Word
from engine.features import HOP_LENGTH, SAMPLE_RATE, log_mel_spectrogram
from engine.streaming import SENTENCE_END, deloop
from engine.whisper.decoding import DecodeOptions

log = logging.getLogger(__name__)

HISTORY_S = 28.0  # audio kept for speech translation (a sentence longer than this is cut to its end)


class AudioHistory:
    """The last ``HISTORY_S`` seconds of the stream, addressable by absolute time."""

    def __init__(self, seconds: float = HISTORY_S):
        self.capacity = int(seconds * SAMPLE_RATE)
        self._audio = np.zeros(0, np.float32)
        self._end = 0  # absolute sample index just after _audio

    def append(self, x: np.ndarray) -> None:
        self._audio = np.concatenate([self._audio, x])[-self.capacity:]
        self._end += x.size

    def slice(self, start_s: float, end_s: float) -> np.ndarray:
        first = self._end - self._audio.size
        a = max(int(start_s * SAMPLE_RATE), first) - first
        b = max(min(int(end_s * SAMPLE_RATE), self._end) - first, a)
        return self._audio[a:b].copy()


class LiveTranslator:
    def __init__(self, model, target: str, emit: Callable[[Translated], None], source_language: Callable[[], str | None],
                 text_translator: Callable[[str, str | None, str], str] | None = None,
                 max_chars: int = 160, pad_s: float = 2.0, draft_interval_s: float | None = None):
        self.model = model
        self.target = target
        self.emit = emit
        self.source_language = source_language
        self.text_translator = text_translator
        self.max_chars = max_chars
        self.pad_s = pad_s
        self.history = AudioHistory()
        self._words: list[Word] = []
        self._last_id: int | None = None
        self._jobs: queue.Queue = queue.Queue()
        self.draft_interval_s = draft_interval_s
        self._lock = threading.Lock()
        self._draft: tuple | None = None  # the newest (segment_id, text, audio) waiting for its turn
        self._last_draft_at = float("-inf")
        self._committed_upto = -1  # segment ids up to this one are committed: their drafts are stale
        self._thread = threading.Thread(target=self._run, name="parley-translate", daemon=True)
        self._thread.start()
        self.translated: list[Translated] = []
        self.busy_s = 0.0

    # --- fed by the recognition thread ---------------------------------------------------------------
    def add(self, segment_id: int, words: list[Word]) -> None:
        """A committed fragment. Sentences are cut at fragment ends only, so each segment id gets one
        translation (a fragment holding the end of one sentence and the start of the next is
        translated with the sentence it ends)."""
        if not words:
            return
        with self._lock:
            self._committed_upto = max(self._committed_upto, segment_id)
            self._draft = None
        if self._words and words[0].start_s - self._words[-1].end_s > 1.5:
            self._flush()
        self._words.extend(words)
        self._last_id = segment_id
        if words[-1].text.rstrip().endswith(SENTENCE_END) or sum(len(x.text) for x in self._words) > self.max_chars:
            self._flush()

    def draft(self, segment_id: int, tentative: list[Word]) -> None:
        """The current tentative tail (segment ``segment_id``): translated as a draft when its turn comes."""
        if self.draft_interval_s is None:
            return
        words = self._words + list(tentative) if tentative else []
        with self._lock:
            if not words or segment_id <= self._committed_upto:
                self._draft = None
                return
            text = "".join(w.text for w in words).strip()
            audio = self.history.slice(words[0].start_s - 0.1, words[-1].end_s + 0.3) if self.target == "en" else None
            self._draft = (segment_id, text, audio)

    def pause(self) -> None:
        """A pause in speech (or the end): what was gathered is a sentence."""
        self._flush()

    def close(self, timeout: float | None = None) -> None:
        """Translate what is gathered and queued, then end the thread."""
        self._flush()
        self._jobs.put(None)
        self._thread.join(timeout)

    def _flush(self) -> None:
        if not self._words:
            return
        words, self._words = self._words, []
        text = "".join(w.text for w in words).strip()
        audio = self.history.slice(words[0].start_s - 0.1, words[-1].end_s + 0.3) if self.target == "en" else None
        self._jobs.put((self._last_id, text, audio))

    # --- the translation thread ----------------------------------------------------------------------
    def _take_draft(self) -> tuple | None:
        with self._lock:
            if self._draft is None or time.monotonic() - self._last_draft_at < self.draft_interval_s:
                return None
            job, self._draft = self._draft, None
            self._last_draft_at = time.monotonic()
            return job

    def _run(self) -> None:
        while True:
            draft = False
            try:
                job = self._jobs.get(timeout=0.05 if self.draft_interval_s is not None else None)
            except queue.Empty:
                job = self._take_draft()
                if job is None:
                    continue
                draft = True
            if job is None:
                return
            segment_id, text, audio = job
            started = time.perf_counter()
            try:
                out = self._translate(text, audio)
            except Exception as e:  # noqa: BLE001 - a failed translation must not stop the session
                log.warning("could not translate %r: %s", text, e)
                continue
            self.busy_s += time.perf_counter() - started
            if not out:
                continue
            with self._lock:
                if draft and segment_id <= self._committed_upto:
                    continue  # its text was committed meanwhile (a final translation is on its way)
                event = Translated(segment_id=segment_id, text=out, draft=draft, emitted_at=time.monotonic(),
                                   language=self.target)
                self.translated.append(event)
                self.emit(event)

    def _translate(self, text: str, audio: np.ndarray | None) -> str:
        source = self.source_language()
        if source == self.target:
            return text
        if self.target == "en" and audio is not None and audio.size >= HOP_LENGTH:
            return self._speech_to_english(audio, source)
        if self.text_translator is None:
            raise RuntimeError(f"no text-translation pack for {source or '?'} → {self.target}")
        return self.text_translator(text, source, self.target)

    def _speech_to_english(self, audio: np.ndarray, source: str | None) -> str:
        return speech_to_english(self.model, audio, source, self.pad_s)


def speech_to_english(model, audio: np.ndarray, source: str | None, pad_s: float = 2.0, beam_size: int = 1) -> str:
    """One stretch of speech (≤ 30 s − pad_s; longer is cut to its end) → English text with Whisper's
    translate task: the encoder sees the audio plus ``pad_s`` of silence, not a padded 30 s window."""
    audio = audio[-int((30.0 - pad_s) * SAMPLE_RATE):]
    frames = audio.size // HOP_LENGTH
    if frames < 1:
        return ""
    mel = log_mel_spectrogram(np.concatenate([audio, np.zeros(HOP_LENGTH, np.float32)]),
                              model.pack.dims.n_mels)[:, :frames]
    mel = np.pad(mel, ((0, 0), (0, round(pad_s * 100))))
    states = model.encode(mel)
    options = DecodeOptions(task="translate", language=source, beam_size=beam_size, max_fallbacks=1,
                            without_timestamps=True, sample_len=min(224, 10 + frames // 12))  # ≈ 8 tokens/s
    result = model.decode_window(states, options, num_frames=frames)
    return "" if result.skipped else _deloop_text(result.text)


def _deloop_text(text: str) -> str:
    """One copy of a phrase the decoder repeated back to back ("the best food and the best food"), and no
    trailing sentence that only starts the translation over ("I like to eat. I like to")."""
    words = [Word(0.0, 0.0, " " + w) for w in text.split()]
    text = "".join(w.text for w in deloop(words)).strip()
    sentences = re.findall(r"[^.!?。！？]+[.!?。！？]*\s*", text)
    key = [re.sub(r"\W+", " ", x).strip().lower() for x in sentences]
    kept = [x for i, x in enumerate(sentences)
            if not (i and key[i] and any(k.startswith(key[i]) for k in key[:i]))]
    return "".join(kept).strip()

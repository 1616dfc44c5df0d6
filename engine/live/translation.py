"""The live translation stage: finished sentences in, ``Translated`` events out, on a thread of its own so
it never holds up recognition.

Each ``FinalSentence`` from the recogniser is translated once (committed translations never change) and
published carrying the segment id of the sentence's last committed fragment, so the source and its
translation line up in the window, the overlay and bilingual subtitles.

- Into English the translator is Whisper itself (speech → English, the cross-modal path). When the
  recogniser's last decode held this sentence alone, its encoder output comes with the sentence and is
  decoded again with the translate task: no second encoder pass. Otherwise the sentence's audio is encoded.
- Into other languages the text goes through an installed text pack (``text_translator``), which pivots
  through English text where it has a pack for each half. Where it has no pack from the spoken language
  but one from English, the speech is translated into English by Whisper first ("via English").

The tentative tail (with the committed words of its unfinished sentence) is translated as a *draft*
(``Translated(draft=True)``) at most every ``draft_interval_s``, only when no sentence is waiting, and only
the newest tail: a draft never delays a final translation, and one overtaken by its commit is dropped.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

import numpy as np

from engine.events import Status, Translated
from engine.features import HOP_LENGTH
from engine.live.recognise import FinalSentence
from engine.whisper.encode import speech_to_english, translate_encoded

log = logging.getLogger(__name__)


class LiveTranslator:
    def __init__(self, model, target: str, emit: Callable[[object], None],
                 text_translator: Callable[[str, str | None, str], str] | None = None,
                 draft_interval_s: float | None = None, pad_s: float = 2.0):
        """``text_translator``: ``(text, source, target) -> text``; if it has ``route(source, target)``
        answering "direct", "pivot" or None, speech is translated into English first where it says None."""
        self.model = model
        self.target = target
        self.emit = emit
        self.text_translator = text_translator
        self.pad_s = pad_s
        self.draft_interval_s = draft_interval_s
        self._jobs: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._draft: tuple | None = None  # the newest (segment_id, text, audio, language) waiting for its turn
        self._last_draft_at = float("-inf")
        self._committed_upto = -1  # segment ids up to this one are committed: their drafts are stale
        self._announced: set[str] = set()
        self.translated: list[Translated] = []
        self.busy_s = 0.0
        self.shared_encoder_passes = 0  # sentences translated from the recogniser's encoder output
        self.own_encoder_passes = 0  # sentences whose audio had to be encoded again
        self._thread = threading.Thread(target=self._run, name="parley-translate", daemon=True)
        self._thread.start()

    # --- fed by the recognition thread ---------------------------------------------------------------
    def submit(self, sentence: FinalSentence) -> None:
        with self._lock:
            self._committed_upto = max(self._committed_upto, sentence.segment_id)
            self._draft = None
        self._jobs.put(sentence)

    def committed(self, segment_id: int) -> None:
        """Segment ``segment_id`` was committed: drafts of it or before it are stale."""
        with self._lock:
            self._committed_upto = max(self._committed_upto, segment_id)
            self._draft = None

    def draft(self, segment_id: int, text: str, audio: np.ndarray | None, language: str | None) -> None:
        """The current unfinished sentence (segment ``segment_id``): translated as a draft when its turn comes."""
        if self.draft_interval_s is None:
            return
        with self._lock:
            if not text or segment_id <= self._committed_upto:
                self._draft = None
                return
            self._draft = (segment_id, text, audio, language)

    def close(self, timeout: float | None = None) -> None:
        """Translate what is queued, then end the thread."""
        self._jobs.put(None)
        self._thread.join(timeout)

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
            try:
                job = self._jobs.get(timeout=0.05 if self.draft_interval_s is not None else None)
            except queue.Empty:
                job = self._take_draft()
                if job is None:
                    continue
            if job is None:
                return
            if isinstance(job, FinalSentence):
                segment_id, draft = job.segment_id, False
                work = lambda job=job: self._translate(job.text, job.language, job.encoded, job.audio)  # noqa: E731
            else:
                segment_id, text, audio, language = job
                draft = True
                work = lambda: self._translate(text, language, None, audio)  # noqa: E731
            started = time.perf_counter()
            try:
                out = work()
            except Exception as e:  # noqa: BLE001 - a failed translation must not stop the session
                log.warning("could not translate segment %s: %s", segment_id, e)
                if not draft:  # the row says why in the translation's place; the status line says it once
                    reason = self._why_not(job.language, e)
                    self._announce(f"translation failed: {reason}")
                    event = Translated(segment_id=segment_id, text="", draft=False, emitted_at=time.monotonic(),
                                       language=self.target, error=reason)
                    self.emit(event)
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

    def _translate(self, text: str, source: str | None, encoded, audio: np.ndarray | None) -> str:
        if source == self.target:
            return text
        if self.target == "en":
            return self._speech_to_english(text, source, encoded, audio)
        if self.text_translator is None:
            raise RuntimeError(f"no text-translation pack for {source or '?'} → {self.target}")
        route = getattr(self.text_translator, "route", None)
        kind = route(source or "en", self.target) if route is not None else "direct"
        if kind is None and source != "en" and (encoded is not None or audio is not None):
            english = self._speech_to_english(text, source, encoded, audio)
            self._announce(f"translating {source} → {self.target} via English (Whisper, then the text pack)")
            return self.text_translator(english, "en", self.target) if english else ""
        if kind == "pivot":
            self._announce(f"translating {source} → {self.target} via English (two text packs)")
        return self.text_translator(text, source, self.target)

    def _why_not(self, source: str | None, error: Exception) -> str:
        why_not = getattr(self.text_translator, "why_not", None)
        return why_not(source, self.target, error) if why_not is not None else str(error)

    def _speech_to_english(self, text: str, source: str | None, encoded, audio: np.ndarray | None) -> str:
        if encoded is not None:
            self.shared_encoder_passes += 1
            return translate_encoded(self.model, encoded, source)
        if audio is not None and audio.size >= HOP_LENGTH:
            self.own_encoder_passes += 1
            return speech_to_english(self.model, audio, source, self.pad_s)
        raise RuntimeError(f"no audio kept for {text!r}")

    def _announce(self, message: str) -> None:
        if message not in self._announced:
            self._announced.add(message)
            log.info("%s", message)
            self.emit(Status(message, emitted_at=time.monotonic()))

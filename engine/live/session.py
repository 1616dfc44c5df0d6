"""A live session: the thread that reads an audio source into the streaming recogniser and routes its events.

    session = LiveSession(model, LiveOptions(language="en"), on_event=print)
    session.start()          # opens the device (AudioDeviceError at once if it cannot), starts a thread
    ...
    session.stop()           # stops capture; what was already captured is still transcribed
    session.finish()         # waits until it is, and the tentative tail is committed

One way through: source → (recording) → ``StreamingRecognizer.feed`` → events. ``Committed``,
``Partial``, ``SentenceEnd``, ``Stats``, ``Status`` go to ``on_event``; each ``FinalSentence`` goes to the
translation stage (engine.live.translation, its own thread), whose ``Translated`` events go to
``on_event`` too. The session owns no recognition logic: the recogniser is tested without it. Both
front-ends start it through engine.jobs (``start_live_job``), which opens the text packs' translator for it.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from engine.errors import AudioDeviceError, ParleyError
from engine.events import Committed, Error, Level, Partial, SessionEnded, Stats, Status
from engine.features import SAMPLE_RATE
from engine.live.options import LiveOptions
from engine.live.recognise import FinalSentence, WhisperRecognise
from engine.live.recognizer import StreamingRecognizer
from engine.live.policy import join_words

__all__ = ["LiveOptions", "LiveSession"]

log = logging.getLogger(__name__)


class LiveSession:
    """One run of live transcription over one audio source (a Capture, a FileSource, or anything with
    ``start()``, ``read(timeout)`` → 16 kHz mono float32, ``stop()``, ``drain()``)."""

    def __init__(self, model, options: LiveOptions | None = None, on_event: Callable[[Any], None] | None = None,
                 source=None, vad=None, text_translator=None):
        self.model = model
        self.options = options or LiveOptions()
        self.on_event = on_event or (lambda event: None)
        self.model.check_language(self.options.language)  # LanguageError now, not in the thread
        target = self.options.translate_to
        if target and target != "en" and text_translator is None:
            raise ValueError(f"translating live into {target!r} needs a text_translator (engine.jobs."
                             "start_live_job opens the installed packs' one)")
        if source is None:
            from engine.audio.capture import Capture

            source = Capture(self.options.device)
        self.source = source
        self._vad = vad
        self._text_translator = text_translator
        self.translator = None
        self.recognizer: StreamingRecognizer | None = None
        self._last_level_at = 0.0
        self._stop = threading.Event()
        self._abort = threading.Event()
        self._thread: threading.Thread | None = None
        self.started_at: float | None = None  # monotonic time the source started (audio time 0)
        self.failed: str | None = None
        self._recorder = None

    # --- public API ------------------------------------------------------------------------------------
    def start(self) -> None:
        """Open the source (raises AudioDeviceError/AudioFileError here) and start the worker thread."""
        if self._thread is not None:
            raise RuntimeError("a LiveSession runs once; create a new one to start again")
        opts = self.options
        gate = None
        if opts.vad:
            from engine.audio.vad import SileroVad, VadGate

            gate = VadGate(self._vad or SileroVad(threshold=opts.vad_threshold))
        target = opts.translate_to
        self.recognizer = StreamingRecognizer(WhisperRecognise(self.model, opts), opts, gate,
                                              realtime=getattr(self.source, "realtime", True),
                                              keep_history=bool(target))
        self._open_recorder()
        try:
            self.source.start()
        except BaseException:
            self._close_recorder()
            raise
        if target:
            from engine.live.translation import LiveTranslator

            drafts = opts.draft_interval_s
            on_gpu = getattr(self.model, "provider", "") == "CUDAExecutionProvider"
            if target == "en" and not on_gpu and not opts.speech_drafts_on_cpu:
                drafts = None
            self.translator = LiveTranslator(self.model, target, self._emit, self._text_translator,
                                             draft_interval_s=drafts)
        self.started_at = getattr(self.source, "started_at", None) or time.monotonic()
        name = getattr(getattr(self.source, "device", None), "name", None) or getattr(self.source, "name", None)
        self._emit(Status(f"listening to {name}" if name else "listening", provider=self.model.provider,
                          model=self.model.pack.name, device=name, emitted_at=time.monotonic()))
        self._thread = threading.Thread(target=self._run, name="parley-live", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop capturing. Audio already captured is still transcribed (``finish`` waits for it)."""
        self._stop.set()
        try:
            self.source.stop()
        except Exception as e:  # noqa: BLE001 - a device that vanished cannot be stopped twice
            log.debug("stopping the source: %s", e)

    def finish(self, timeout: float | None = None) -> list[Committed]:
        """Stop, drain everything captured, commit the tentative tail; return all committed segments."""
        self.stop()
        if self._thread is not None:
            self._thread.join(timeout)
        return self.committed

    def abort(self) -> None:
        """Stop at once, without transcribing what is still buffered."""
        self._abort.set()
        self.stop()
        if self._thread is not None:
            self._thread.join()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the source to run out (a file) or the session to be stopped; True once it ended."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def committed(self) -> list[Committed]:
        return list(self.recognizer.committed) if self.recognizer is not None else []

    @property
    def language(self) -> str | None:
        return self.recognizer.language if self.recognizer is not None else self.options.language

    @property
    def steps(self) -> int:
        return self.recognizer.steps if self.recognizer is not None else 0

    @property
    def final_searches(self) -> tuple[int, int]:
        """(searched, skipped): unsure finalising decodes searched again with the beam, and those the in-time
        rule left greedy (the search would have made the sentence late)."""
        r = self.recognizer
        return (r.final_searches, r.final_searches_skipped) if r is not None else (0, 0)

    @property
    def step_times_s(self) -> list[float]:
        return list(self.recognizer.step_times_s) if self.recognizer is not None else []

    @property
    def text(self) -> str:
        return "".join(" " + c.text for c in self.committed).strip()

    # --- the worker thread -----------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._stop.is_set() and not self._abort.is_set():
                try:
                    chunk = self.source.read(0.1)
                except AudioDeviceError as e:
                    self.failed = str(e)
                    self._emit(Error(str(e), cause=repr(e), emitted_at=time.monotonic()))
                    break
                if not chunk.size and getattr(self.source, "exhausted", False):
                    break
                self._record(chunk)
                self._route(self.recognizer.feed(chunk))
                self._emit_level()
            if not self._abort.is_set():
                self._drain()
        except Exception as e:  # noqa: BLE001 - the thread must report, never die silently
            log.exception("live session failed")
            message = str(e) if isinstance(e, ParleyError) else f"live transcription stopped: {e}"
            self.failed = message
            self._emit(Error(message, cause=repr(e), emitted_at=time.monotonic()))
        finally:
            try:
                self.source.stop()
            except Exception:  # noqa: BLE001
                pass
            self._close_recorder()
            if self.translator is not None:  # translates what is queued, unless aborted
                self.translator.close(timeout=0 if self._abort.is_set() else None)
            self._emit(Status("stopped" if not self.failed else "stopped after an error",
                              emitted_at=time.monotonic()))
            self._emit(SessionEnded(self.failed or None, emitted_at=time.monotonic()))

    def _drain(self) -> None:
        try:
            rest = self.source.drain()
        except Exception as e:  # noqa: BLE001 - what was read already still gets transcribed
            # (a device that failed mid-stream was said already, as the session's error: not twice)
            (log.debug if self.failed else log.warning)("could not drain the audio source: %s", e)
            rest = np.zeros(0, np.float32)
        if rest.size:
            self._record(rest)
            self._route(self.recognizer.feed(rest))
        self._route(self.recognizer.flush())

    def _route(self, events: list) -> None:
        for event in events:
            if isinstance(event, FinalSentence):
                if self.translator is not None:
                    self.translator.submit(event)
                continue
            if isinstance(event, Stats):
                event = dataclasses.replace(event, dropped_blocks=int(getattr(self.source, "dropped_blocks", 0)))
            elif isinstance(event, Committed) and self.translator is not None:
                self.translator.committed(event.segment_id)  # first, so a draft of it can no longer go out
            self._emit(event)
            if isinstance(event, Partial) and self.translator is not None:
                self._draft(event)

    def _draft(self, partial: Partial) -> None:
        words = self.recognizer.draft_words()
        audio = None
        if words and self.options.translate_to == "en" and self.recognizer.history is not None:
            audio = self.recognizer.history.slice(words[0].start_s - 0.1, words[-1].end_s + 0.3)
        self.translator.draft(partial.segment_id, join_words(words), audio, self.recognizer.language)

    # --- recording (the same clock as the segments, for corrections) -------------------------------------
    def _open_recorder(self) -> None:
        self._recorder = None
        if not self.options.record_path:
            return
        path = Path(self.options.record_path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._recorder = sf.SoundFile(path, "w", samplerate=SAMPLE_RATE, channels=1, subtype="PCM_16")
        except (OSError, RuntimeError) as e:
            raise ParleyError(f"cannot record the session to {path}: {e}") from e

    def _close_recorder(self) -> None:
        recorder, self._recorder = self._recorder, None
        if recorder is not None:
            try:
                recorder.close()
            except Exception as e:  # noqa: BLE001 - the transcript matters more than the recording
                log.warning("closing the recording: %s", e)

    def _record(self, chunk: np.ndarray) -> None:
        if self._recorder is None or not chunk.size:
            return
        try:
            self._recorder.write(np.clip(chunk, -1.0, 1.0))
        except Exception as e:  # noqa: BLE001 - a full disk ends the recording, not the transcription
            log.warning("recording stopped: %s", e)
            self._close_recorder()

    def _emit_level(self) -> None:
        level = getattr(self.source, "last_level", None)
        now = time.monotonic()
        if isinstance(level, Level) and now - self._last_level_at >= self.options.level_interval_s:
            self._last_level_at = now
            self._emit(level)

    def _emit(self, event) -> None:
        try:
            self.on_event(event)
        except Exception:  # noqa: BLE001 - a listener's bug must not stop transcription
            log.exception("event listener failed on %s", type(event).__name__)
